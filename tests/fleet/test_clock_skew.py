"""Clock skew: two workers whose clocks differ by 30 seconds either way.

Worker A is inside a step of a run (its lease: 5 s plus the step's 10 s timeout). Worker B,
a separate engine on a separate store as on another machine, tries every way to take the
run: a recovery pass, ``resume``, and ``run`` under the same operation id.

On PostgreSQL leases are judged by the server's clock, so neither skew lets B take over a
live lease, and A finishes the run with every write accepted. On SQLite the callers' clocks
judge the lease: a B whose clock runs 30 s ahead takes over at once; fencing then refuses
A's next write, but the step has been called by both. That is why SQLite serves one machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.exceptions import RunBusyError, StaleOwnerError
from sagaguard.storage import RunStatus
from tests import pg

LEASE_S = 5.0
STEP_TIMEOUT_S = 10.0
SKEW_S = 30.0


class HeldStep:
    """A saga whose one step blocks its first caller until the test lets it go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self.calls: list[tuple[str, int]] = []
        self.saga = Saga("skewed", defaults={"timeout": STEP_TIMEOUT_S})

        @self.saga.step(changes=["external_api"], idempotent="yes")
        def hold(ctx: StepContext) -> dict[str, Any]:
            self.calls.append((threading.current_thread().name, ctx.fencing_token))
            if len(self.calls) == 1:
                self.entered.set()
                assert self.go.wait(STEP_TIMEOUT_S / 2), "the test never let the step go"
            return {"token": ctx.fencing_token}


def _clock(skew_s: float) -> Callable[[], float]:
    return lambda: time.time() + skew_s


def _start_a(engine: Engine, held: HeldStep, outcome: list[Any]) -> threading.Thread:
    def drive() -> None:
        try:
            outcome.append(engine.run(held.saga, operation_id="op-1").run.status)
        except StaleOwnerError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=drive, name="worker-a")
    thread.start()
    assert held.entered.wait(10), "worker A never reached its step"
    return thread


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema's journal URL, leases on the server's clock (the default)."""
    pg.require()
    name = pg.fresh_schema()
    try:
        yield pg.store_url(name)
    finally:
        pg.drop_schema(name)


@pytest.mark.postgres
@pytest.mark.parametrize(("skew_a", "skew_b"), [(-SKEW_S, SKEW_S), (SKEW_S, -SKEW_S)])
def test_on_postgres_no_skew_takes_over_a_live_lease(
    pg_url: str, skew_a: float, skew_b: float
) -> None:
    held, outcome = HeldStep(), []
    with (
        Engine(store=pg_url, clock=_clock(skew_a), lease_s=LEASE_S, owner="a") as a,
        Engine(store=pg_url, clock=_clock(skew_b), lease_s=LEASE_S, owner="b") as b,
    ):
        b.register(held.saga)
        thread = _start_a(a, held, outcome)
        try:
            assert b.recover() == []
            with pytest.raises(RunBusyError):
                b.resume("op-1")
            assert b.run(held.saga, operation_id="op-1").run.owner == "a"
            assert b.store.claim_expired(owner="b", now=time.time() + 3600, lease_s=1) == []
        finally:
            held.go.set()
            thread.join(timeout=30)
        events = a.store.events("op-1")
    assert outcome == [RunStatus.COMPLETED]
    assert {e.actor for e in events} == {"a"}, "B wrote to the run"
    assert len(held.calls) == 1


def test_on_sqlite_a_clock_30s_ahead_takes_over_and_fencing_refuses_the_old_owner(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/journal.sqlite3"
    held, outcome = HeldStep(), []
    with (
        Engine(store=url, clock=_clock(0.0), lease_s=LEASE_S, owner="a") as a,
        Engine(store=url, clock=_clock(SKEW_S), lease_s=LEASE_S, owner="b") as b,
    ):
        b.register(held.saga)
        thread = _start_a(a, held, outcome)
        try:
            [taken] = b.recover()
        finally:
            held.go.set()
            thread.join(timeout=30)
        claims = [e.actor for e in a.store.events("op-1") if e.kind == "claimed"]
    assert taken.run.status is RunStatus.COMPLETED
    assert claims == ["b"], "B took over A's lease, live by real time, at once"
    [refused] = outcome
    assert isinstance(refused, StaleOwnerError)
    assert [token for _, token in held.calls] == [1, 2], "both owners called the step"
