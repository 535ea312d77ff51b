"""Owner ids are worker incarnations: fresh per engine, so a restart never inherits a lease."""

from __future__ import annotations

import os
import re
import socket

from sagaguard.engine import Engine, FaultPoint
from sagaguard.storage import JournalStore, RunStatus
from tests.behaviour.sagas import FakeClock, Provider, checkout
from tests.behaviour.test_ownership import CrashOnce, die_running


def test_an_engine_owner_is_a_random_id_at_host_and_pid(store: JournalStore) -> None:
    with Engine(store=store) as first, Engine(store=store) as second:
        owners = [first.owner, second.owner]

    where = re.escape(f"{socket.gethostname()}:{os.getpid()}")
    for owner in owners:
        assert re.fullmatch(rf"[0-9a-f]{{16}}@{where}", owner), owner
    assert owners[0] != owners[1], "same host and pid, yet two incarnations"


def test_a_restarted_engine_on_the_same_host_and_pid_leaves_the_dead_ones_live_lease(
    store: JournalStore, clock: FakeClock
) -> None:
    """Only the random part tells the two apart: it alone keeps the new one from stealing."""
    saga = checkout(Provider())
    dead = die_running(
        store, clock, saga, "op-1", faults=CrashOnce(FaultPoint.AFTER_CALL, "reserve_stock")
    )
    with Engine(store=store, clock=clock, sleep=clock.sleep, lease_s=10) as restarted:
        during = restarted.run(saga, operation_id="op-1", input=None)
        assert during.run.owner == dead.owner, "a live lease of the old incarnation is kept"
        assert during.run.status is RunStatus.RUNNING

        clock.advance(3600)
        after = restarted.run(saga, operation_id="op-1", input=None)

    assert after.run.status is RunStatus.COMPLETED
    claims = [e for e in store.events("op-1") if e.kind == "claimed"]
    assert [(e.actor, e.data["previous_owner"]) for e in claims] == [(restarted.owner, dead.owner)]
