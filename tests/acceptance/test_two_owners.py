"""Two owners on one run: exactly one acts, and the stale one's writes are rejected.

Threads: two engines share one SQLite file. Owner A stalls inside the charge past its lease;
owner B recovers the run and finishes it; when A's call finally returns, its write is
rejected by the fencing token and its late result never reaches the journal.

Processes: two child processes race ``recover()`` (or ``resume``) on the same expired run;
the journal hands it to exactly one, and the ledger shows one set of calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sagaguard import StaleOwnerError
from sagaguard.engine import Engine, RecordingNotifier, StepContext
from sagaguard.storage.base import RunStatus
from sagaguard.storage.sqlite import SQLiteStore
from tests.acceptance.conftest import LATER, Shop
from tests.acceptance.shop import build

pytestmark = pytest.mark.slow

OP = "op-1"
MakeShop = Callable[[str], Shop]


@pytest.mark.parametrize("kind", ["idempotent", "verify"])
def test_stale_owner_stalled_in_a_step_is_fenced_off_and_its_late_result_dropped(
    shop: MakeShop, kind: str
) -> None:
    s = shop(kind)
    a_inside, a_may_return = threading.Event(), threading.Event()

    def stall_first_owner(ctx: StepContext) -> None:
        # Owner A's charge reaches the provider, then its answer hangs past the lease.
        if ctx.fencing_token == 1:
            a_inside.set()
            assert a_may_return.wait(timeout=30), "the test never released owner A"

    saga = build(kind, s.ledger, charge_hook=stall_first_owner)
    failures: list[BaseException] = []
    store_a, store_b = SQLiteStore(path=s.journal), SQLiteStore(path=s.journal)
    s.stores += [store_a, store_b]
    owner_a = Engine(store=store_a, owner="owner-a", lease_s=0.2)
    owner_b = Engine(
        store=store_b,
        sagas=[saga],
        owner="owner-b",
        notifier=RecordingNotifier(),
        clock=lambda: time.time() + LATER,
    )

    def run_a() -> None:
        try:
            owner_a.run(saga, operation_id=OP, input={})
        except BaseException as exc:  # the thread's outcome is inspected below
            failures.append(exc)

    thread = threading.Thread(target=run_a)
    thread.start()
    try:
        assert a_inside.wait(timeout=30), "owner A never reached the charge"
        [taken] = owner_b.recover()
        assert taken.run.status is RunStatus.COMPLETED
    finally:
        a_may_return.set()
        thread.join(timeout=30)
    owner_a.close()
    owner_b.close()

    assert len(failures) == 1, failures
    assert isinstance(failures[0], StaleOwnerError), failures
    after = store_b.load(OP)
    assert after.run.status is RunStatus.COMPLETED
    assert after.step("charge").result["token"] == 2, "B's result is kept, A's late one dropped"
    if kind == "verify":
        assert after.step("charge").result["charged_by"] == 1, "B found A's charge"
    events = store_b.events(OP)
    claimed = next(e.seq for e in events if e.kind == "claimed" and e.actor == "owner-b")
    assert {e.actor for e in events if e.seq > claimed} == {"owner-b"}, "only B wrote after"
    charges = s.ledger.select(step_id="charge", kind="call")
    expected_tokens = [1, 2] if kind == "idempotent" else [1]  # B verifies rather than charge
    assert [c.fencing_token for c in charges] == expected_tokens
    assert {c.idempotency_key for c in charges} == {f"{OP}:charge"}
    after_takeover = [e for e in s.ledger.entries() if e.step_id != "reserve"][1:]
    assert {e.fencing_token for e in after_takeover} == {2}, "only B acted after the takeover"
    assert s.violations(OP) == []


@pytest.mark.parametrize("action", ["recover", "resume"])
def test_two_processes_racing_for_one_expired_run_exactly_one_drives_it(
    shop: MakeShop, action: str
) -> None:
    s = shop("idempotent")
    died = s.child("run", op=OP, input={"charge_delay": 0.3}, crash="before_call:charge")
    assert died.killed, died.stderr
    dead_pids = {e.pid for e in s.ledger.entries()}
    racers = [s.spawn(action, op=OP, clock_offset=LATER, barrier=True) for _ in range(2)]
    s.release(racers)  # both are set up: they start their run together
    results = [s.finish(racer) for racer in racers]
    reports = [r.report for r in results]
    assert all(r is not None for r in reports), [r.stderr for r in results]

    racer_pids = {r["pid"] for r in reports if r}
    actors = {e.pid for e in s.ledger.entries()} - dead_pids
    assert len(actors) == 1, f"calls were made by {actors}: more than one owner acted"
    assert actors <= racer_pids
    [winner] = [r for r in reports if r and r["pid"] in actors]
    [loser] = [r for r in reports if r and r["pid"] not in actors]
    if action == "recover":
        assert winner["recovered"] == [OP]
        assert winner["status"] == ["completed"]
        assert loser["recovered"] == [], "the journal never hands one run to two callers"
    else:
        assert winner["status"] == "completed"
        assert "busy" in loser or loser["status"] == "completed", loser

    store = s.store()
    assert store.load(OP).run.status is RunStatus.COMPLETED
    claims = [e.actor for e in store.events(OP) if e.kind == "claimed"]
    assert claims == [winner["owner"]], "exactly one takeover"
    charges = s.ledger.select(step_id="charge", kind="call")
    assert [c.attempt for c in charges] == [2], "one set of calls: the retry, once"
    assert s.violations(OP) == []
