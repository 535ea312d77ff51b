"""claim_expired: recovery picks up active runs nobody holds, and never hands one out twice."""

from __future__ import annotations

import threading
from collections import Counter

from sagaguard.storage import Claim, JournalStore, RunStatus

from .helpers import LEASE, T0, run_becomes, start

LATER = T0 + LEASE + 1
"""A time when every lease taken at T0 has expired."""


def _with_status(store: JournalStore, operation_id: str, status: RunStatus, at: float) -> None:
    claim = start(store, operation_id, owner="crashed", now=at)
    if status is not RunStatus.RUNNING:
        store.record(claim, [run_becomes(status)], now=at, lease_s=LEASE)


def test_only_active_runs_whose_lease_expired_are_claimed(store: JournalStore) -> None:
    for offset, status in enumerate(RunStatus):
        _with_status(store, status.value, status, at=T0 + offset)
    start(store, "live", owner="alive", now=LATER - 1)

    claims = store.claim_expired(owner="recoverer", now=LATER + len(RunStatus), lease_s=LEASE)

    assert sorted(c.operation_id for c in claims) == ["compensating", "running"]


def test_a_released_active_run_is_claimed_at_once(store: JournalStore) -> None:
    store.release(start(store, owner="worker-a"), now=T0 + 1)

    claims = store.claim_expired(owner="recoverer", now=T0 + 2, lease_s=LEASE)

    assert [c.operation_id for c in claims] == ["op-1"]


def test_a_lease_ending_exactly_now_counts_as_expired(store: JournalStore) -> None:
    start(store, owner="worker-a")

    assert store.claim_expired(owner="r", now=T0 + LEASE - 0.001, lease_s=LEASE) == []
    assert [
        c.operation_id for c in store.claim_expired(owner="r", now=T0 + LEASE, lease_s=LEASE)
    ] == ["op-1"]


def test_claimed_runs_get_a_new_token_a_lease_and_a_claimed_event(store: JournalStore) -> None:
    start(store, "op-1", owner="crashed")

    [claim] = store.claim_expired(owner="recoverer", now=LATER, lease_s=15.0)

    assert claim == Claim("op-1", "recoverer", 2, LATER + 15.0)
    run = store.load("op-1").run
    assert (run.owner, run.fencing_token, run.lease_expires_at) == ("recoverer", 2, LATER + 15)
    event = store.events("op-1")[-1]
    assert (event.kind, event.actor, event.at) == ("claimed", "recoverer", LATER)
    assert event.data["previous_owner"] == "crashed"


def test_a_claimed_run_is_not_claimed_again_while_its_new_lease_lives(store: JournalStore) -> None:
    start(store, owner="crashed")
    store.claim_expired(owner="recoverer-1", now=LATER, lease_s=LEASE)

    assert store.claim_expired(owner="recoverer-2", now=LATER + 1, lease_s=LEASE) == []


def test_at_most_limit_runs_are_claimed_oldest_first(store: JournalStore) -> None:
    for n in range(5):
        start(store, f"op-{n}", owner="crashed", now=T0 + 4 - n)

    first = store.claim_expired(owner="r", now=LATER + 10, lease_s=LEASE, limit=2)
    rest = store.claim_expired(owner="r", now=LATER + 10, lease_s=LEASE, limit=10)

    assert [c.operation_id for c in first] == ["op-4", "op-3"]
    assert [c.operation_id for c in rest] == ["op-2", "op-1", "op-0"]
    assert store.claim_expired(owner="r", now=LATER + 10, lease_s=LEASE, limit=0) == []


def test_nothing_to_recover_returns_an_empty_list(store: JournalStore) -> None:
    assert store.claim_expired(owner="r", now=T0, lease_s=LEASE) == []


def test_concurrent_recoverers_never_receive_the_same_run(store: JournalStore) -> None:
    runs, workers = 60, 8
    for n in range(runs):
        start(store, f"op-{n}", owner="crashed", now=T0)
    barrier = threading.Barrier(workers)
    received: list[list[Claim]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def recover(index: int) -> None:
        try:
            barrier.wait()
            while batch := store.claim_expired(
                owner=f"recoverer-{index}", now=LATER, lease_s=LEASE, limit=3
            ):
                received[index].extend(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    handed_out = Counter(c.operation_id for batch in received for c in batch)
    assert sorted(handed_out) == sorted(f"op-{n}" for n in range(runs))
    assert set(handed_out.values()) == {1}
    for index, batch in enumerate(received):
        for claim in batch:
            run = store.load(claim.operation_id).run
            assert (run.owner, run.fencing_token) == (f"recoverer-{index}", claim.fencing_token)
