"""Run views: a row of a list and one run in detail, from the journal's records to JSON.

Records are built by hand, so each test pins how one field of the journal reaches the view,
independently of any engine; the reads run over the in-memory store.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from tests.unit.journal_records import T0, CountingStore, event, run_record, snapshot, step_record

from sagaguard.operator import (
    EventView,
    OddityKind,
    RunDetail,
    RunRow,
    StepView,
    clock_time,
    iso_time,
    list_runs,
    run_detail,
)
from sagaguard.storage import NewRun, StepChange, Transition
from sagaguard.storage.base import RunStatus, StepStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.vocabulary import EventKind


def test_times_are_iso_utc_with_milliseconds() -> None:
    """Every time in a view's JSON is ISO 8601 UTC, so a person and a script read one instant."""
    assert iso_time(T0) == "2025-06-15T15:06:40.250Z"
    assert iso_time(None) is None
    assert clock_time(T0) == "15:06:40.250"


def test_a_time_no_calendar_holds_is_shown_as_the_first_or_last_moment() -> None:
    """An infinite lease an older version stored must not hide the whole journal."""
    assert iso_time(float("inf")) == "9999-12-31T23:59:59.999Z"
    assert iso_time(-1e300) == "0001-01-01T00:00:00.000Z"
    assert iso_time(float("nan")) is None


def test_a_row_carries_status_reason_and_ownership() -> None:
    """A run row shows where it stands and who owns it until when."""
    row = RunRow.of(run_record(owner="w1", lease_expires_at=T0 + 60)).to_json()

    assert row == {
        "operation_id": "order-7",
        "process": "checkout",
        "version": "2",
        "status": "needs_manual_review",
        "reason": "charge_payment: verify could not tell",
        "owner": "w1",
        "lease_expires_at": "2025-06-15T15:07:40.250Z",
        "fencing_token": 3,
        "created_at": "2025-06-15T15:06:40.250Z",
        "updated_at": "2025-06-15T15:06:41.750Z",
        "oddities": [],
    }


def test_a_step_view_carries_attempts_external_id_result_and_reason() -> None:
    """The step timeline keeps everything an operator needs to act on a step."""
    view = StepView.of(
        step_record(
            "charge_payment",
            StepStatus.COMPENSATED,
            position=2,
            attempts=2,
            compensation_attempts=1,
            external_id="pay_1",
            result={"payment_id": "pay_1"},
            failure_reason="timed out",
            completed_seq=3,
        )
    )
    assert view.status is StepStatus.COMPENSATED
    assert view.to_json() == {
        "step_id": "charge_payment",
        "position": 2,
        "status": "compensated",
        "attempts": 2,
        "compensation_attempts": 1,
        "last_attempt_at": "2025-06-15T15:06:40.250Z",
        "idempotency_key": "order-7:charge_payment",
        "external_id": "pay_1",
        "result": {"payment_id": "pay_1"},
        "reason": "timed out",
        "completed_seq": 3,
    }


def test_an_event_view_names_actor_kind_step_transition_and_reason() -> None:
    """An event shows who did what to which step, from which status to which, and why."""
    view = EventView.of(
        event(
            4,
            "resolved",
            "charge_payment",
            actor="review:alice",
            from_status="needs_manual_review",
            to_status="completed",
            reason="completed by alice: seen in the dashboard",
            data={"by": "alice"},
        )
    ).to_json()
    assert view == {
        "seq": 4,
        "at": "2025-06-15T15:06:44.250Z",
        "actor": "review:alice",
        "kind": "resolved",
        "step_id": "charge_payment",
        "from": "needs_manual_review",
        "to": "completed",
        "reason": "completed by alice: seen in the dashboard",
        "data": {"by": "alice"},
    }


def test_a_run_detail_is_json_and_keeps_process_order_and_events() -> None:
    """The whole view survives json.dumps: ``--json`` prints exactly what tables show."""
    waiting = snapshot(
        RunStatus.NEEDS_MANUAL_REVIEW,
        ("create_order", StepStatus.COMPLETED),
        ("charge_payment", StepStatus.NEEDS_MANUAL_REVIEW),
    )
    view = RunDetail.of(waiting, [event(1, "run_created"), event(2, "step_started", "x")]).to_json()

    assert json.loads(json.dumps(view)) == view
    assert [s["step_id"] for s in view["steps"]] == ["create_order", "charge_payment"]
    assert [e["seq"] for e in view["events"]] == [1, 2]
    assert view["input"] == {"order": {"total_cents": 100}}
    assert "events" not in RunDetail.of(waiting).to_json()


def test_views_are_frozen() -> None:
    """A view handed to a page cannot be changed under another reader."""
    row = RunRow.of(run_record())
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = RunStatus.COMPLETED  # type: ignore[misc]


def test_a_completed_run_shows_its_best_effort_step_that_did_not_succeed() -> None:
    """Issue 6: "completed" alone would hide that the email never went out."""
    done = snapshot(
        RunStatus.COMPLETED,
        ("charge_payment", StepStatus.COMPLETED),
        ("send_email", StepStatus.FAILED),
        reason=None,
    )
    done = dataclasses.replace(
        done, steps=(done.steps[0], dataclasses.replace(done.steps[1], failure_reason="550"))
    )

    detail = RunDetail.of(done)

    assert [odd.kind for odd in detail.row.oddities] == [OddityKind.BEST_EFFORT_FAILED]
    assert detail.to_json()["oddities"] == [
        {
            "kind": "best_effort_failed",
            "step_id": "send_email",
            "step_status": "failed",
            "reason": "550",
        }
    ]


# -- reads over a store ---------------------------------------------------------------------


def _journal(*runs: tuple[str, RunStatus, dict[str, StepStatus]]) -> InMemoryStore:
    store = InMemoryStore()
    for n, (op, status, steps) in enumerate(runs):
        created = store.create_run(
            NewRun(op, "checkout", "1", {}, tuple(steps)), owner="w", now=T0 + n, lease_s=30
        )
        assert created.claim is not None
        moves = [
            Transition(kind=EventKind.STEP_COMPLETED, step=StepChange(sid, st, failure_reason="x"))
            for sid, st in steps.items()
        ]
        moves.append(Transition(kind=EventKind.RUN_COMPLETED, run_status=status))
        store.record(created.claim, moves, now=T0 + n, lease_s=30, release=True)
    return store


def test_list_runs_finds_oddities_in_two_reads_whatever_the_number_of_runs() -> None:
    store = _journal(
        ("o-1", RunStatus.COMPLETED, {"pay": StepStatus.COMPLETED, "mail": StepStatus.UNKNOWN}),
        ("o-2", RunStatus.COMPLETED, {"pay": StepStatus.COMPLETED, "mail": StepStatus.COMPLETED}),
        ("o-3", RunStatus.COMPENSATED, {"pay": StepStatus.COMPENSATED, "mail": StepStatus.FAILED}),
        *((f"x-{n}", RunStatus.COMPLETED, {"pay": StepStatus.COMPLETED}) for n in range(20)),
    )
    counting = CountingStore(store)

    rows = list_runs(counting, limit=100)  # type: ignore[arg-type]

    assert counting.reads == ["list_runs", "load_many"]
    odd = {row.operation_id: [(o.kind, o.step_id) for o in row.oddities] for row in rows}
    assert odd["o-1"] == [(OddityKind.BEST_EFFORT_UNKNOWN, "mail")]
    assert odd["o-2"] == []
    assert odd["o-3"] == []  # a rollback's failed step is no oddity: the status says it
    assert [row.operation_id for row in rows][:3] == ["x-19", "x-18", "x-17"]


def test_list_runs_of_a_status_without_completed_runs_reads_no_steps() -> None:
    store = _journal(("o-3", RunStatus.COMPENSATED, {"pay": StepStatus.COMPENSATED}))
    counting = CountingStore(store)

    rows = list_runs(counting, status=RunStatus.COMPENSATED)  # type: ignore[arg-type]

    assert [row.operation_id for row in rows] == ["o-3"]
    assert counting.reads == ["list_runs"]


def test_run_detail_reads_the_run_and_its_events() -> None:
    store = _journal(("o-1", RunStatus.COMPLETED, {"pay": StepStatus.COMPLETED}))

    detail = run_detail(store, "o-1")

    assert detail.row.status is RunStatus.COMPLETED
    assert detail.events is not None
    assert [e.kind for e in detail.events] == [
        "run_created",
        "step_completed",
        "run_completed",
        "released",
    ]
    assert detail.to_json() == RunDetail.of(store.load("o-1"), store.events("o-1")).to_json()
