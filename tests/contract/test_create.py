"""create_run: a new run is complete and owned; the same request returns it; another conflicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sagaguard.exceptions import OperationConflictError, RunNotFoundError, StoreError
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.storage.payloads import input_hash

from .helpers import INPUT, LEASE, STEPS, T0, journal, new_run, start, started, step


def test_a_new_run_is_running_owned_by_its_creator_with_token_one(store: JournalStore) -> None:
    result = store.create_run(new_run(), owner="worker-a", now=T0, lease_s=LEASE)

    assert result.created
    assert result.claim is not None
    assert (result.claim.owner, result.claim.fencing_token) == ("worker-a", 1)
    assert result.claim.lease_expires_at == T0 + LEASE
    run = result.snapshot.run
    assert run.operation_id == "op-1"
    assert (run.process, run.version) == ("checkout", "1")
    assert run.input == INPUT
    assert run.input_hash == input_hash(INPUT)
    assert run.status is RunStatus.RUNNING
    assert (run.owner, run.fencing_token, run.lease_expires_at) == ("worker-a", 1, T0 + LEASE)
    assert (run.created_at, run.updated_at, run.reason) == (T0, T0, None)


def test_a_new_run_has_every_step_pending_in_process_order(store: JournalStore) -> None:
    snapshot = store.create_run(new_run(), owner="w", now=T0, lease_s=LEASE).snapshot

    assert [s.step_id for s in snapshot.steps] == list(STEPS)
    assert [s.position for s in snapshot.steps] == [0, 1, 2]
    for record in snapshot.steps:
        assert record.status is StepStatus.PENDING
        assert (record.attempts, record.compensation_attempts) == (0, 0)
        assert record.idempotency_key == f"op-1:{record.step_id}"
        assert record.last_attempt_at is None
        assert record.external_id is None
        assert record.result is None
        assert record.failure_reason is None
        assert record.completed_seq is None


def test_each_step_keeps_the_name_of_its_external_id_field(store: JournalStore) -> None:
    """A person resolving a step later records its external id without the saga's code."""
    new = dataclasses.replace(new_run(), external_id_fields={"charge": "payment_id"})

    created = store.create_run(new, owner="w", now=T0, lease_s=LEASE).snapshot

    fields = {s.step_id: s.external_id_field for s in store.load("op-1").steps}
    assert fields == {"reserve": None, "charge": "payment_id", "ship": None}
    assert created == store.load("op-1")


def test_the_planned_snapshot_of_a_new_run_is_what_create_writes(store: JournalStore) -> None:
    """An owner plans a run's first transitions on NewRun.snapshot before the creating commit."""
    new = dataclasses.replace(new_run(), external_id_fields={"charge": "payment_id"})

    created = store.create_run(new, owner="w", now=T0, lease_s=LEASE).snapshot

    assert new.snapshot(owner="w", now=T0, lease_s=LEASE) == created


def test_create_returns_what_load_reads(store: JournalStore) -> None:
    created = store.create_run(new_run(), owner="w", now=T0, lease_s=LEASE).snapshot

    assert store.load("op-1") == created


def test_a_new_run_starts_its_audit_trail_with_run_created_by_the_owner(
    store: JournalStore,
) -> None:
    start(store, owner="worker-a")

    [event] = store.events("op-1")
    assert (event.seq, event.kind, event.actor, event.at) == (1, "run_created", "worker-a", T0)
    assert event.to_status == "running"
    assert event.step_id is None


def test_the_same_request_again_returns_the_existing_run_unchanged(store: JournalStore) -> None:
    start(store, owner="worker-a")
    before = journal(store)

    again = store.create_run(new_run(), owner="worker-b", now=T0 + 5, lease_s=LEASE)

    assert not again.created
    assert again.claim is None
    assert again.snapshot == before[0]
    assert journal(store) == before


def test_the_same_input_with_keys_in_another_order_is_the_same_request(
    store: JournalStore,
) -> None:
    start(store, input={"a": 1, "b": {"x": [1, 2], "y": None}})

    again = store.create_run(
        new_run(input={"b": {"y": None, "x": [1, 2]}, "a": 1}), owner="w", now=T0, lease_s=LEASE
    )

    assert not again.created


def test_a_different_input_under_the_same_operation_id_is_a_conflict(
    store: JournalStore,
) -> None:
    start(store)
    before = journal(store)

    with pytest.raises(OperationConflictError):
        store.create_run(
            new_run(input={**INPUT, "amount_cents": 9999}), owner="w", now=T0, lease_s=LEASE
        )
    assert journal(store) == before


def test_a_different_process_under_the_same_operation_id_is_a_conflict(
    store: JournalStore,
) -> None:
    start(store)
    before = journal(store)

    with pytest.raises(OperationConflictError):
        store.create_run(new_run(process="refund"), owner="w", now=T0, lease_s=LEASE)
    assert journal(store) == before


def test_runs_with_different_operation_ids_are_independent(store: JournalStore) -> None:
    start(store, "op-1", owner="a")
    start(store, "op-2", owner="b", input={"other": True})

    assert store.load("op-1").run.owner == "a"
    assert store.load("op-2").run.input == {"other": True}
    assert store.load("op-2").steps[0].idempotency_key == "op-2:reserve"


def test_a_payload_that_is_not_json_is_refused_and_nothing_is_created(
    store: JournalStore,
) -> None:
    with pytest.raises(StoreError):
        store.create_run(new_run(input={"when": object()}), owner="w", now=T0, lease_s=LEASE)
    with pytest.raises(StoreError):
        store.create_run(new_run(input={"ratio": float("nan")}), owner="w", now=T0, lease_s=LEASE)

    with pytest.raises(RunNotFoundError):
        store.load("op-1")
    assert store.list_runs() == []


def test_a_step_id_listed_twice_is_refused_and_nothing_is_created(store: JournalStore) -> None:
    with pytest.raises(StoreError):
        store.create_run(
            new_run(steps=("reserve", "charge", "reserve")), owner="w", now=T0, lease_s=LEASE
        )

    assert store.list_runs() == []


def test_a_run_without_steps_can_be_created(store: JournalStore) -> None:
    snapshot = store.create_run(new_run(steps=()), owner="w", now=T0, lease_s=LEASE).snapshot

    assert snapshot.steps == ()
    assert store.load("op-1").steps == ()


def test_a_new_run_and_its_first_transitions_are_written_together(store: JournalStore) -> None:
    """The run and the ``started`` of its first step share one commit."""
    result = store.create_run(
        new_run(), owner="w", now=T0, lease_s=LEASE, transitions=[started("reserve", at=T0)]
    )

    assert result.created
    assert result.claim is not None
    assert (result.claim.fencing_token, result.claim.lease_expires_at) == (1, T0 + LEASE)
    assert result.snapshot == store.load("op-1")
    reserve = result.snapshot.step("reserve")
    assert (reserve.status, reserve.attempts, reserve.last_attempt_at) == (
        StepStatus.STARTED,
        1,
        T0,
    )
    events = store.events("op-1")
    assert [(e.seq, e.kind, e.actor) for e in events] == [
        (1, "run_created", "w"),
        (2, "step_started", "w"),
    ]
    assert (events[1].from_status, events[1].to_status) == ("pending", "started")
    # The claim is a real one: the creator goes on writing under it.
    store.record(result.claim, [started("charge")], now=T0 + 1, lease_s=LEASE)


def test_transitions_given_for_an_existing_run_are_not_applied(store: JournalStore) -> None:
    start(store)
    before = journal(store)

    again = store.create_run(
        new_run(), owner="other", now=T0 + 1, lease_s=LEASE, transitions=[started("reserve")]
    )

    assert not again.created
    assert journal(store) == before


@pytest.mark.parametrize(
    "transition",
    [
        step("step_started", "no_such_step", StepStatus.STARTED),
        step("step_completed", "reserve", StepStatus.COMPLETED, result={"bad": {1, 2}}),
    ],
    ids=["unknown_step", "payload_not_json"],
)
def test_a_bad_first_transition_creates_nothing(store: JournalStore, transition: Any) -> None:
    with pytest.raises(StoreError):
        store.create_run(new_run(), owner="w", now=T0, lease_s=LEASE, transitions=[transition])

    with pytest.raises(RunNotFoundError):
        store.load("op-1")
    assert store.list_runs() == []


def test_the_same_input_under_another_version_is_a_conflict(store: JournalStore) -> None:
    """A request names one version of a process: another version's run is not its run."""
    start(store)
    before = journal(store)

    with pytest.raises(OperationConflictError, match="v1, not v2"):
        store.create_run(new_run(version="2"), owner="w", now=T0, lease_s=LEASE)
    assert journal(store) == before
