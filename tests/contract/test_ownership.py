"""claim, heartbeat and release: one owner at a time, proven by lease and fencing token."""

from __future__ import annotations

import pytest

from sagaguard.exceptions import RunBusyError, RunNotFoundError, StaleOwnerError
from sagaguard.storage import Claim, JournalStore, RunStatus

from .helpers import LEASE, T0, journal, run_becomes, start, started


def test_claiming_a_run_under_another_owners_live_lease_is_refused(store: JournalStore) -> None:
    start(store, owner="worker-a")
    before = journal(store)

    with pytest.raises(RunBusyError):
        store.claim("op-1", owner="worker-b", now=T0 + LEASE - 1, lease_s=LEASE)
    assert journal(store) == before


def test_another_owner_takes_over_once_the_lease_expired(store: JournalStore) -> None:
    start(store, owner="worker-a")

    claim = store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=10.0)

    assert claim == Claim("op-1", "worker-b", 2, T0 + LEASE + 11.0)
    run = store.load("op-1").run
    assert (run.owner, run.fencing_token, run.lease_expires_at) == ("worker-b", 2, T0 + LEASE + 11)
    assert run.updated_at == T0 + LEASE + 1


def test_a_lease_is_over_at_the_instant_it_expires(store: JournalStore) -> None:
    start(store, owner="worker-a")

    claim = store.claim("op-1", owner="worker-b", now=T0 + LEASE, lease_s=LEASE)

    assert claim.owner == "worker-b"


def test_the_same_owner_may_claim_again_during_its_lease_and_gets_a_new_token(
    store: JournalStore,
) -> None:
    first = start(store, owner="worker-a")

    second = store.claim("op-1", owner="worker-a", now=T0 + 1, lease_s=LEASE)

    assert second.fencing_token == first.fencing_token + 1
    assert second.lease_expires_at == T0 + 1 + LEASE
    with pytest.raises(StaleOwnerError):
        store.record(first, [started("reserve")], now=T0 + 2, lease_s=LEASE)


def test_every_claim_increments_the_token_and_is_audited(store: JournalStore) -> None:
    start(store, owner="worker-a")
    store.claim("op-1", owner="worker-b", now=T0 + 100, lease_s=LEASE)
    store.claim("op-1", owner="worker-b", now=T0 + 101, lease_s=LEASE)
    last = store.claim("op-1", owner="worker-c", now=T0 + 200, lease_s=LEASE)

    assert last.fencing_token == 4
    claims = [e for e in store.events("op-1") if e.kind == "claimed"]
    assert [(e.actor, e.at, e.data["fencing_token"]) for e in claims] == [
        ("worker-b", T0 + 100, 2),
        ("worker-b", T0 + 101, 3),
        ("worker-c", T0 + 200, 4),
    ]
    assert [e.data["previous_owner"] for e in claims] == ["worker-a", "worker-b", "worker-b"]
    assert claims[0].reason is not None
    assert "worker-a" in claims[0].reason
    assert claims[1].reason is None


def test_claiming_an_unknown_run_raises_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.claim("nope", owner="w", now=T0, lease_s=LEASE)


def test_a_run_waiting_for_review_can_be_claimed_to_act_on_a_resolution(
    store: JournalStore,
) -> None:
    claim = start(store, owner="worker-a")
    claim = store.record(claim, [run_becomes(RunStatus.NEEDS_MANUAL_REVIEW)], now=T0, lease_s=LEASE)
    store.release(claim, now=T0)

    taken = store.claim("op-1", owner="reviewer", now=T0 + 1, lease_s=LEASE)

    assert taken.owner == "reviewer"
    assert store.load("op-1").run.status is RunStatus.NEEDS_MANUAL_REVIEW


def test_heartbeat_extends_the_lease_without_an_event_or_an_update_time(
    store: JournalStore,
) -> None:
    claim = start(store)
    events = store.events("op-1")

    renewed = store.heartbeat(claim, now=T0 + 20, lease_s=LEASE)

    assert renewed == Claim("op-1", "worker-a", 1, T0 + 20 + LEASE)
    run = store.load("op-1").run
    assert run.lease_expires_at == T0 + 20 + LEASE
    assert run.updated_at == T0
    assert store.events("op-1") == events
    with pytest.raises(RunBusyError):
        store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)


def test_heartbeat_never_shortens_a_lease_a_commit_gave_for_a_long_wait(
    store: JournalStore,
) -> None:
    """A commit leased the run for a call's timeout; a heartbeat during that call keeps it."""
    claim = start(store)
    long = store.record(claim, [started("reserve")], now=T0, lease_s=10 * LEASE)

    kept = store.heartbeat(long, now=T0 + 1, lease_s=LEASE)

    assert kept.lease_expires_at == T0 + 10 * LEASE
    assert store.load("op-1").run.lease_expires_at == T0 + 10 * LEASE
    with pytest.raises(RunBusyError):
        store.claim("op-1", owner="worker-b", now=T0 + 2 * LEASE, lease_s=LEASE)
    later = store.heartbeat(kept, now=T0 + 10 * LEASE - 1, lease_s=LEASE)
    assert later.lease_expires_at == T0 + 11 * LEASE - 1


def test_a_record_of_nothing_is_a_heartbeat_and_shortens_nothing(store: JournalStore) -> None:
    claim = start(store)
    long = store.record(claim, [started("reserve")], now=T0, lease_s=10 * LEASE)
    events = store.events("op-1")

    kept = store.record(long, [], now=T0 + 1, lease_s=LEASE)

    assert kept.lease_expires_at == T0 + 10 * LEASE
    assert store.events("op-1") == events


def test_heartbeat_of_an_old_claim_object_with_the_current_token_renews(
    store: JournalStore,
) -> None:
    """A commit hands out a new claim object; one taken before it still beats (same token)."""
    first = start(store)
    store.record(first, [started("reserve")], now=T0 + 5, lease_s=LEASE)

    renewed = store.heartbeat(first, now=T0 + 20, lease_s=LEASE)

    assert renewed == Claim("op-1", "worker-a", 1, T0 + 20 + LEASE)


def test_heartbeat_with_a_stale_claim_is_rejected_and_changes_nothing(
    store: JournalStore,
) -> None:
    old = start(store, owner="worker-a")
    store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.heartbeat(old, now=T0 + LEASE + 2, lease_s=1000.0)
    assert journal(store) == before


def test_heartbeat_on_an_unknown_run_raises_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.heartbeat(Claim("nope", "w", 1, T0), now=T0, lease_s=LEASE)


def test_release_clears_owner_and_lease_and_is_audited(store: JournalStore) -> None:
    claim = start(store, owner="worker-a")

    store.release(claim, now=T0 + 5)

    run = store.load("op-1").run
    assert (run.owner, run.lease_expires_at) == (None, None)
    assert run.fencing_token == 1
    assert run.updated_at == T0 + 5
    last = store.events("op-1")[-1]
    assert (last.kind, last.actor, last.at) == ("released", "worker-a", T0 + 5)


def test_a_released_run_can_be_claimed_by_anyone_at_once(store: JournalStore) -> None:
    store.release(start(store, owner="worker-a"), now=T0 + 1)

    claim = store.claim("op-1", owner="worker-b", now=T0 + 2, lease_s=LEASE)

    assert claim.fencing_token == 2


def test_a_released_claim_can_no_longer_write(store: JournalStore) -> None:
    claim = start(store)
    store.release(claim, now=T0 + 1)
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.record(claim, [started("reserve")], now=T0 + 2, lease_s=LEASE)
    with pytest.raises(StaleOwnerError):
        store.heartbeat(claim, now=T0 + 2, lease_s=LEASE)
    with pytest.raises(StaleOwnerError):
        store.release(claim, now=T0 + 2)
    assert journal(store) == before


def test_a_stale_release_leaves_the_run_as_the_new_owner_has_it(store: JournalStore) -> None:
    old = start(store, owner="worker-a")
    new = store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.release(old, now=T0 + LEASE + 2)

    assert journal(store) == before
    assert store.load("op-1").run.owner == "worker-b"
    store.heartbeat(new, now=T0 + LEASE + 3, lease_s=LEASE)


def test_release_of_an_unknown_run_raises_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.release(Claim("nope", "w", 1, T0), now=T0)
