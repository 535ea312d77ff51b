"""record: transitions applied together under a current claim, or not at all."""

from __future__ import annotations

import pytest

from sagaguard.exceptions import RunBusyError, RunNotFoundError, StaleOwnerError, StoreError
from sagaguard.storage import Claim, JournalStore, RunStatus, StepChange, StepStatus, Transition

from .helpers import LEASE, T0, completed, journal, run_becomes, start, started, step


def test_record_applies_every_transition_and_renews_the_lease(store: JournalStore) -> None:
    claim = start(store)

    renewed = store.record(
        claim,
        [
            started("reserve", attempt=1, at=T0 + 1),
            completed("reserve", seq=1, result={"hold": "h-9"}, external_id="h-9"),
            started("charge", attempt=1, at=T0 + 2),
        ],
        now=T0 + 3,
        lease_s=60.0,
    )

    assert renewed == Claim("op-1", "worker-a", 1, T0 + 63)
    snapshot = store.load("op-1")
    reserve, charge, ship = snapshot.steps
    assert (reserve.status, reserve.attempts, reserve.last_attempt_at) == (
        StepStatus.COMPLETED,
        1,
        T0 + 1,
    )
    assert (reserve.result, reserve.external_id, reserve.completed_seq) == (
        {"hold": "h-9"},
        "h-9",
        1,
    )
    assert (charge.status, charge.attempts, charge.last_attempt_at) == (
        StepStatus.STARTED,
        1,
        T0 + 2,
    )
    assert ship.status is StepStatus.PENDING
    assert snapshot.run.lease_expires_at == T0 + 63
    assert snapshot.run.updated_at == T0 + 3


def test_record_appends_one_event_per_transition_by_the_claims_owner(store: JournalStore) -> None:
    claim = start(store, owner="worker-a")

    store.record(
        claim,
        [
            started("reserve"),
            step("step_failed", "reserve", StepStatus.FAILED, failure_reason="declined"),
            Transition(kind="retry_scheduled", reason="backoff 0.2s", data={"delay_s": 0.2}),
        ],
        now=T0 + 4,
        lease_s=LEASE,
    )

    events = store.events("op-1")
    assert [e.seq for e in events] == [1, 2, 3, 4]
    created, begun, failed, retry = events
    assert created.kind == "run_created"
    assert [(e.kind, e.actor, e.at) for e in (begun, failed, retry)] == [
        ("step_started", "worker-a", T0 + 4),
        ("step_failed", "worker-a", T0 + 4),
        ("retry_scheduled", "worker-a", T0 + 4),
    ]
    assert (begun.step_id, begun.from_status, begun.to_status) == ("reserve", "pending", "started")
    assert (failed.from_status, failed.to_status) == ("started", "failed")
    assert (retry.step_id, retry.from_status, retry.to_status) == (None, None, None)
    assert (retry.reason, retry.data) == ("backoff 0.2s", {"delay_s": 0.2})


def test_an_event_records_the_step_status_it_left_across_separate_calls(
    store: JournalStore,
) -> None:
    claim = start(store)
    claim = store.record(claim, [started("charge")], now=T0 + 1, lease_s=LEASE)
    claim = store.record(
        claim, [step("step_unknown", "charge", StepStatus.UNKNOWN)], now=T0 + 2, lease_s=LEASE
    )
    store.record(claim, [completed("charge", seq=1)], now=T0 + 3, lease_s=LEASE)

    moves = [(e.from_status, e.to_status) for e in store.events("op-1")[1:]]
    assert moves == [("pending", "started"), ("started", "unknown"), ("unknown", "completed")]


def test_a_run_status_change_is_audited_from_the_status_it_left(store: JournalStore) -> None:
    claim = start(store)

    store.record(
        claim,
        [
            run_becomes(RunStatus.COMPENSATING, reason="ship failed"),
            run_becomes(RunStatus.NEEDS_MANUAL_REVIEW, reason="refund failed"),
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    moves = [(e.from_status, e.to_status) for e in store.events("op-1")[1:]]
    assert moves == [("running", "compensating"), ("compensating", "needs_manual_review")]
    run = store.load("op-1").run
    assert (run.status, run.reason) == (RunStatus.NEEDS_MANUAL_REVIEW, "refund failed")


def test_a_step_and_run_change_in_one_transition_both_apply_and_the_event_follows_the_step(
    store: JournalStore,
) -> None:
    claim = start(store)

    store.record(
        claim,
        [
            Transition(
                kind="step_failed",
                step=StepChange("reserve", StepStatus.FAILED),
                run_status=RunStatus.FAILED,
                run_reason="nothing to undo",
            )
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    snapshot = store.load("op-1")
    assert snapshot.step("reserve").status is StepStatus.FAILED
    assert (snapshot.run.status, snapshot.run.reason) == (RunStatus.FAILED, "nothing to undo")
    last = store.events("op-1")[-1]
    assert (last.step_id, last.from_status, last.to_status) == ("reserve", "pending", "failed")


def test_a_step_named_only_for_attribution_leaves_the_event_to_the_run_move(
    store: JournalStore,
) -> None:
    claim = start(store)
    claim = store.record(claim, [started("reserve")], now=T0, lease_s=LEASE)

    store.record(
        claim,
        [
            Transition(
                kind="awaiting_review",
                step=StepChange("reserve", StepStatus.STARTED),
                run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            )
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    last = store.events("op-1")[-1]
    assert (last.step_id, last.from_status, last.to_status) == (
        "reserve",
        "running",
        "needs_manual_review",
    )
    assert store.load("op-1").step("reserve").status is StepStatus.STARTED


def test_the_run_reason_is_replaced_with_each_status_and_kept_otherwise(
    store: JournalStore,
) -> None:
    claim = start(store)
    claim = store.record(
        claim,
        [run_becomes(RunStatus.NEEDS_MANUAL_REVIEW, reason="verify raised")],
        now=T0,
        lease_s=LEASE,
    )
    claim = store.record(claim, [started("reserve")], now=T0, lease_s=LEASE)
    assert store.load("op-1").run.reason == "verify raised"

    claim = store.record(claim, [run_becomes(RunStatus.RUNNING)], now=T0, lease_s=LEASE)
    assert store.load("op-1").run.reason is None

    store.record(
        claim, [Transition(kind="note", run_reason="waiting on bank")], now=T0, lease_s=LEASE
    )
    run = store.load("op-1").run
    assert (run.status, run.reason) == (RunStatus.RUNNING, "waiting on bank")


def test_step_fields_left_none_keep_their_stored_values(store: JournalStore) -> None:
    claim = start(store)
    claim = store.record(
        claim,
        [
            step(
                "step_completed",
                "charge",
                StepStatus.COMPLETED,
                attempts=2,
                last_attempt_at=T0 + 1,
                external_id="ch_1",
                result={"id": "ch_1"},
                failure_reason="timeout on attempt 1",
                completed_seq=1,
            )
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    store.record(
        claim,
        [
            step(
                "compensation_started", "charge", StepStatus.COMPENSATING, compensation_attempts=1
            ),
        ],
        now=T0 + 2,
        lease_s=LEASE,
    )

    charge = store.load("op-1").step("charge")
    assert charge.status is StepStatus.COMPENSATING
    assert charge.compensation_attempts == 1
    assert (charge.attempts, charge.last_attempt_at) == (2, T0 + 1)
    assert (charge.external_id, charge.result) == ("ch_1", {"id": "ch_1"})
    assert (charge.failure_reason, charge.completed_seq) == ("timeout on attempt 1", 1)


def test_a_write_under_a_stale_token_is_rejected_and_changes_nothing(store: JournalStore) -> None:
    old = start(store, owner="worker-a")
    store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.record(
            old,
            [started("reserve"), run_becomes(RunStatus.COMPLETED)],
            now=T0 + LEASE + 2,
            lease_s=1000.0,
        )
    assert journal(store) == before


def test_a_claim_with_the_right_token_but_another_owner_is_stale(store: JournalStore) -> None:
    claim = start(store, owner="worker-a")
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.record(
            Claim("op-1", "impostor", claim.fencing_token, claim.lease_expires_at),
            [started("reserve")],
            now=T0 + 1,
            lease_s=LEASE,
        )
    assert journal(store) == before


def test_a_lapsed_lease_that_nobody_took_over_still_writes(store: JournalStore) -> None:
    claim = start(store)

    renewed = store.record(claim, [started("reserve")], now=T0 + 10 * LEASE, lease_s=LEASE)

    assert renewed.lease_expires_at == T0 + 11 * LEASE
    assert store.load("op-1").step("reserve").status is StepStatus.STARTED


def test_recording_on_an_unknown_run_raises_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.record(Claim("nope", "w", 1, T0), [started("reserve")], now=T0, lease_s=LEASE)


def test_an_unknown_step_rejects_the_whole_batch(store: JournalStore) -> None:
    claim = start(store)
    before = journal(store)

    with pytest.raises(StoreError):
        store.record(
            claim,
            [started("reserve"), run_becomes(RunStatus.COMPENSATING), started("no_such_step")],
            now=T0 + 1,
            lease_s=LEASE,
        )
    assert journal(store) == before


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(completed("reserve", seq=1, result={"at": object()}), id="result"),
        pytest.param(Transition(kind="note", data={1, 2}), id="data-set"),
        pytest.param(Transition(kind="note", data=float("inf")), id="data-infinity"),
    ],
)
def test_a_payload_that_is_not_json_rejects_the_whole_batch(
    store: JournalStore, bad: Transition
) -> None:
    claim = start(store)
    before = journal(store)

    with pytest.raises(StoreError):
        store.record(claim, [started("reserve"), bad], now=T0 + 1, lease_s=1000.0)
    assert journal(store) == before


def test_an_empty_batch_only_renews_the_lease(store: JournalStore) -> None:
    claim = start(store)
    events = store.events("op-1")

    renewed = store.record(claim, [], now=T0 + 7, lease_s=LEASE)

    assert renewed.lease_expires_at == T0 + 7 + LEASE
    assert store.events("op-1") == events
    assert store.load("op-1").run.updated_at == T0


def test_the_renewed_claim_keeps_writing_and_the_lease_keeps_others_out(
    store: JournalStore,
) -> None:
    claim = start(store, owner="worker-a")
    claim = store.record(claim, [started("reserve")], now=T0 + LEASE - 1, lease_s=LEASE)

    with pytest.raises(RunBusyError):
        store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)
    store.record(claim, [completed("reserve", seq=1)], now=T0 + LEASE + 2, lease_s=LEASE)


def test_the_step_window_fields_persist_and_a_none_keeps_each_of_them(
    store: JournalStore,
) -> None:
    """Schema v3's fields: retry and settle windows, verify count, compensation window, kept."""
    claim = start(store)
    claim = store.record(
        claim,
        [
            step(
                "outcome_unknown",
                "charge",
                StepStatus.UNKNOWN,
                first_attempt_at=T0 + 1,
                unknown_since=T0 + 2,
                verify_attempts=2,
                compensation_first_at=T0 + 3,
                kept=True,
            )
        ],
        now=T0 + 4,
        lease_s=LEASE,
    )
    store.record(
        claim, [step("verify_called", "charge", StepStatus.UNKNOWN)], now=T0 + 5, lease_s=LEASE
    )

    charge = store.load("op-1").step("charge")
    assert (charge.first_attempt_at, charge.unknown_since, charge.compensation_first_at) == (
        T0 + 1,
        T0 + 2,
        T0 + 3,
    )
    assert (charge.verify_attempts, charge.kept) == (2, True)
    untouched = store.load("op-1").step("ship")
    assert (untouched.first_attempt_at, untouched.verify_attempts, untouched.kept) == (
        None,
        0,
        False,
    )


def test_two_changes_of_one_step_in_one_record_apply_in_order(store: JournalStore) -> None:
    """The later change wins for each field it gives; the earlier one's other fields stay."""
    claim = start(store)

    store.record(
        claim,
        [
            step("step_started", "charge", StepStatus.STARTED, attempts=1, first_attempt_at=T0),
            completed("charge", seq=1, result={"payment_id": "p-1"}, external_id="p-1"),
            step("note", "charge", StepStatus.COMPLETED, failure_reason="slow answer"),
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    charge = store.load("op-1").step("charge")
    assert charge.status is StepStatus.COMPLETED
    assert (charge.attempts, charge.first_attempt_at, charge.completed_seq) == (1, T0, 1)
    assert (charge.result, charge.external_id, charge.failure_reason) == (
        {"payment_id": "p-1"},
        "p-1",
        "slow answer",
    )
    moves = [(e.from_status, e.to_status) for e in store.events("op-1")[1:]]
    assert moves == [("pending", "started"), ("started", "completed"), ("completed", "completed")]
