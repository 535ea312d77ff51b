"""The store side of a fleet: runs submitted unowned, claimed in batches, waking idle workers.

A submitted run has no owner and no lease, so the first ``claim_expired`` of any worker takes
it, with fencing token 1; the same dedupe and conflict rules hold as for ``create_run`` with
an owner. ``wait_for_work`` wakes a waiter when work may have appeared.
"""

from __future__ import annotations

import threading

import pytest

from sagaguard.exceptions import OperationConflictError, StaleOwnerError, StoreError
from sagaguard.storage import JournalStore, RunStatus

from .helpers import INPUT, LEASE, T0, journal, new_run, start, started


def submit(store: JournalStore, operation_id: str = "op-1", **run: object) -> None:
    result = store.create_run(new_run(operation_id, **run), owner=None, now=T0, lease_s=LEASE)  # type: ignore[arg-type]
    assert result.created
    assert result.claim is None


def test_a_submitted_run_is_running_unowned_with_token_zero(store: JournalStore) -> None:
    result = store.create_run(new_run(), owner=None, now=T0, lease_s=LEASE)

    run = result.snapshot.run
    assert (run.status, run.owner, run.lease_expires_at, run.fencing_token) == (
        RunStatus.RUNNING,
        None,
        None,
        0,
    )
    assert result.snapshot == store.load("op-1")
    [created] = store.events("op-1")
    assert (created.kind, created.actor, created.to_status) == (
        "run_created",
        "submitter",
        "running",
    )


def test_any_worker_claims_a_submitted_run_at_once_with_token_one(store: JournalStore) -> None:
    submit(store)

    [claim] = store.claim_expired(owner="worker-a", now=T0, lease_s=LEASE)

    assert (claim.operation_id, claim.owner, claim.fencing_token) == ("op-1", "worker-a", 1)
    assert claim.lease_expires_at == T0 + LEASE
    claimed = store.events("op-1")[-1]
    assert (claimed.kind, claimed.reason, claimed.data) == (
        "claimed",
        None,
        {"fencing_token": 1, "previous_owner": None},
    )
    assert store.claim_expired(owner="worker-b", now=T0, lease_s=LEASE) == []
    store.record(claim, [started("reserve")], now=T0 + 1, lease_s=LEASE)


def test_submitting_the_same_request_again_returns_the_run_unchanged(store: JournalStore) -> None:
    submit(store)
    before = journal(store)

    again = store.create_run(new_run(), owner=None, now=T0 + 5, lease_s=LEASE)
    owned = store.create_run(new_run(), owner="worker-a", now=T0 + 5, lease_s=LEASE)

    assert (again.created, again.claim, owned.created, owned.claim) == (False, None, False, None)
    assert journal(store) == before


def test_submitting_another_input_under_the_same_id_is_a_conflict(store: JournalStore) -> None:
    start(store)
    before = journal(store)

    with pytest.raises(OperationConflictError):
        store.create_run(
            new_run(input={**INPUT, "amount_cents": 1}), owner=None, now=T0, lease_s=LEASE
        )
    assert journal(store) == before


def test_a_submitted_run_cannot_carry_first_transitions(store: JournalStore) -> None:
    with pytest.raises(StoreError, match="without an owner"):
        store.create_run(
            new_run(), owner=None, now=T0, lease_s=LEASE, transitions=[started("reserve")]
        )

    assert store.list_runs() == []


def test_batches_of_submitted_runs_go_out_oldest_first_each_to_one_worker(
    store: JournalStore,
) -> None:
    for number in range(7):
        store.create_run(new_run(f"op-{number}"), owner=None, now=T0 + number, lease_s=LEASE)

    first = store.claim_expired(owner="a", now=T0 + 10, lease_s=LEASE, limit=3)
    second = store.claim_expired(owner="b", now=T0 + 10, lease_s=LEASE, limit=3)
    third = store.claim_expired(owner="c", now=T0 + 10, lease_s=LEASE, limit=3)

    assert [c.operation_id for c in first] == ["op-0", "op-1", "op-2"]
    assert [c.operation_id for c in second] == ["op-3", "op-4", "op-5"]
    assert [c.operation_id for c in third] == ["op-6"]
    assert {c.fencing_token for c in first + second + third} == {1}


def test_concurrent_workers_never_claim_the_same_submitted_run(store: JournalStore) -> None:
    for number in range(60):
        store.create_run(new_run(f"op-{number}"), owner=None, now=T0, lease_s=LEASE)
    taken: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        mine: list[str] = []
        while batch := store.claim_expired(owner=name, now=T0 + 1, lease_s=LEASE, limit=4):
            mine.extend(c.operation_id for c in batch)
        taken[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [op for mine in taken.values() for op in mine]
    assert sorted(every) == sorted(f"op-{n}" for n in range(60))


def test_a_claim_of_a_submitted_run_fences_off_an_earlier_claim(store: JournalStore) -> None:
    submit(store)
    [first] = store.claim_expired(owner="a", now=T0, lease_s=LEASE)
    [second] = store.claim_expired(owner="b", now=T0 + LEASE, lease_s=LEASE)

    assert second.fencing_token == first.fencing_token + 1
    with pytest.raises(StaleOwnerError):
        store.record(first, [started("reserve")], now=T0 + LEASE + 1, lease_s=LEASE)


def test_waiting_for_work_times_out_when_nothing_happens(store: JournalStore) -> None:
    assert store.wait_for_work(0.05) is False


def test_work_that_appears_between_two_waits_wakes_the_second_at_once(
    store: JournalStore,
) -> None:
    """A worker is busy between its waits (claiming, driving): a run submitted then, after
    its last claim, must not sit until the worker's next poll."""
    assert store.wait_for_work(0.01) is False  # this thread has waited; now it is "busy"
    submit(store)
    assert store.wait_for_work(30.0) is True
    # That notice is spent. PostgreSQL may still hear its own NOTIFY back from the server
    # once (the store also wakes its own process at once): one echo, then quiet.
    echoes = 0
    while store.wait_for_work(0.2):
        echoes += 1
        assert echoes <= 1, "a spent notice keeps waking the waiter"


@pytest.mark.parametrize("how", ["submit", "release", "record_release"])
def test_a_waiting_worker_wakes_when_work_appears(store: JournalStore, how: str) -> None:
    """Each action below makes claimable work; the waiter returns True well before 30 s.

    The waiter cannot say when it has begun to wait, so the action is repeated (a new run
    each time) until the waiter is back; without waking it would sit out its 30 s.
    """
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(store.wait_for_work(30.0)))
    thread.start()
    for number in range(100):
        operation_id = f"op-{number}"
        if how == "submit":
            submit(store, operation_id)
        else:
            claim = start(store, operation_id)
            if how == "release":
                store.release(claim, now=T0 + 1)
            else:
                store.record(claim, [], now=T0 + 1, lease_s=LEASE, release=True)
        thread.join(timeout=0.1)
        if not thread.is_alive():
            break

    assert woke == [True]


def test_a_claim_limited_to_some_sagas_takes_only_their_runs(store: JournalStore) -> None:
    """Runs of other sagas or versions are left unclaimed (no new token, no event), every pass."""
    for operation_id, process, version in (
        ("old", "checkout", "1"),
        ("new", "checkout", "2"),
        ("refund", "refund", "1"),
        ("newer", "checkout", "3"),
    ):
        store.create_run(
            new_run(operation_id, process=process, version=version),
            owner=None,
            now=T0,
            lease_s=LEASE,
        )
    left = {op: journal(store, op) for op in ("old", "refund")}

    mine = [("checkout", "2"), ("checkout", "3"), ("checkout", "2")]
    first = store.claim_expired(owner="v2", now=T0 + 1, lease_s=LEASE, processes=mine)
    again = store.claim_expired(
        owner="v2", now=T0 + 2 * LEASE, lease_s=LEASE, processes=mine, limit=1
    )

    assert [c.operation_id for c in first] == ["new", "newer"]
    assert [c.operation_id for c in again] == ["new"]
    assert {op: journal(store, op) for op in left} == left
    assert store.claim_expired(owner="v1", now=T0 + 3, lease_s=LEASE, processes=[]) == []
    rest = store.claim_expired(owner="any", now=T0 + 3, lease_s=LEASE, processes=None)
    assert sorted(c.operation_id for c in rest) == ["old", "refund"]


def test_a_claim_limited_by_a_pair_that_is_not_two_strings_is_refused(
    store: JournalStore,
) -> None:
    submit(store)

    with pytest.raises(StoreError, match="processes: 'checkout'"):
        store.claim_expired(owner="a", now=T0, lease_s=LEASE, processes=["checkout"])  # type: ignore[list-item]
    assert store.load("op-1").run.fencing_token == 0
