"""The journal's view models: what the terminal, ``--json`` and a web page all show.

Records are built by hand here, so each test pins how one field of the journal reaches the
view, independently of any store or engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagaguard.cli.views import (
    Narrator,
    clock_time,
    event_view,
    iso_time,
    narrate_events,
    resolutions_for,
    review_item,
    run_summary,
    run_view,
    step_view,
    waiting_step,
)
from sagaguard.demo import SCENARIOS, play
from sagaguard.storage import open_store
from sagaguard.storage.base import Event, RunRecord, RunSnapshot, RunStatus, StepRecord, StepStatus

T0 = 1_750_000_000.25  # 2025-06-15T15:06:40.250Z


def _run(status: RunStatus = RunStatus.NEEDS_MANUAL_REVIEW, **changes: Any) -> RunRecord:
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "process": "checkout",
        "version": "2",
        "input": {"order": {"total_cents": 100}},
        "input_hash": "abc",
        "status": status,
        "owner": None,
        "lease_expires_at": None,
        "fencing_token": 3,
        "created_at": T0,
        "updated_at": T0 + 1.5,
        "reason": "charge_payment: verify could not tell",
    }
    return RunRecord(**(values | changes))


def _step(step_id: str, status: StepStatus, position: int = 0, **changes: Any) -> StepRecord:
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "step_id": step_id,
        "position": position,
        "status": status,
        "attempts": 1,
        "last_attempt_at": T0,
        "idempotency_key": f"order-7:{step_id}",
        "external_id": None,
        "result": None,
        "failure_reason": None,
        "compensation_attempts": 0,
        "completed_seq": None,
    }
    return StepRecord(**(values | changes))


def _event(seq: int, kind: str, step_id: str | None = None, **changes: Any) -> Event:
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "seq": seq,
        "at": T0 + seq,
        "actor": "worker-1",
        "kind": kind,
        "step_id": step_id,
        "from_status": None,
        "to_status": None,
        "reason": None,
        "data": None,
    }
    return Event(**(values | changes))


def test_times_are_iso_utc_with_milliseconds() -> None:
    """Every time in a view is ISO 8601 UTC, so a person and a script read the same instant."""
    assert iso_time(T0) == "2025-06-15T15:06:40.250Z"
    assert iso_time(None) is None
    assert clock_time(T0) == "15:06:40.250"


def test_run_summary_carries_status_reason_and_ownership() -> None:
    """A run row shows where it stands and who owns it until when."""
    summary = run_summary(_run(owner="w1", lease_expires_at=T0 + 60))
    assert summary["status"] == "needs_manual_review"
    assert summary["reason"] == "charge_payment: verify could not tell"
    assert summary["owner"] == "w1"
    assert summary["lease_expires_at"] == "2025-06-15T15:07:40.250Z"
    assert summary["fencing_token"] == 3
    assert summary["updated_at"] == "2025-06-15T15:06:41.750Z"


def test_step_view_carries_attempts_external_id_result_and_reason() -> None:
    """The step timeline keeps everything an operator needs to act on a step."""
    view = step_view(
        _step(
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
    assert view == {
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


def test_event_view_names_actor_kind_step_transition_and_reason() -> None:
    """An event shows who did what to which step, from which status to which, and why."""
    view = event_view(
        _event(
            4,
            "resolved",
            "charge_payment",
            actor="review:alice",
            from_status="needs_manual_review",
            to_status="completed",
            reason="completed by alice: seen in the dashboard",
            data={"by": "alice"},
        )
    )
    assert view["seq"] == 4
    assert view["actor"] == "review:alice"
    assert (view["kind"], view["step_id"]) == ("resolved", "charge_payment")
    assert (view["from"], view["to"]) == ("needs_manual_review", "completed")
    assert view["reason"] == "completed by alice: seen in the dashboard"
    assert view["data"] == {"by": "alice"}


def test_run_view_is_json_and_keeps_process_order_and_events() -> None:
    """The whole run view survives json.dumps: ``--json`` prints exactly what tables show."""
    snapshot = RunSnapshot(
        run=_run(),
        steps=(
            _step("create_order", StepStatus.COMPLETED, 0),
            _step("charge_payment", StepStatus.NEEDS_MANUAL_REVIEW, 1),
        ),
    )
    view = run_view(snapshot, [_event(1, "run_created"), _event(2, "step_started", "x")])
    assert json.loads(json.dumps(view)) == view
    assert [s["step_id"] for s in view["steps"]] == ["create_order", "charge_payment"]
    assert [e["seq"] for e in view["events"]] == [1, 2]
    assert view["input"] == {"order": {"total_cents": 100}}
    assert "events" not in run_view(snapshot)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((StepStatus.COMPLETED, StepStatus.NEEDS_MANUAL_REVIEW), "b"),
        ((StepStatus.COMPENSATION_FAILED, StepStatus.COMPENSATED), "a"),
        ((StepStatus.COMPLETED, StepStatus.PENDING), None),
    ],
)
def test_waiting_step_is_the_one_held_for_review(
    statuses: tuple[StepStatus, StepStatus], expected: str | None
) -> None:
    """The waiting step is the one in needs_manual_review or compensation_failed."""
    snapshot = RunSnapshot(run=_run(), steps=(_step("a", statuses[0]), _step("b", statuses[1], 1)))
    found = waiting_step(snapshot)
    assert (found.step_id if found else None) == expected


def test_resolutions_fit_the_waiting_state() -> None:
    """An unknown outcome may be declared anything; a failed undo only compensated by hand."""
    assert resolutions_for(StepStatus.NEEDS_MANUAL_REVIEW) == (
        "completed",
        "not_applied",
        "compensated",
    )
    assert resolutions_for(StepStatus.COMPENSATION_FAILED) == ("compensated",)
    assert resolutions_for(StepStatus.COMPLETED) == ()


def test_review_item_prefers_the_route_recorded_in_the_journal() -> None:
    """A route journaled with the alert wins over the one looked up from the saga."""
    snapshot = RunSnapshot(
        run=_run(), steps=(_step("charge_payment", StepStatus.NEEDS_MANUAL_REVIEW),)
    )
    recorded = [_event(5, "needs_manual_review", "charge_payment", data={"route": "finance"})]
    assert review_item(snapshot, recorded, route="oncall")["route"] == "finance"
    item = review_item(snapshot, [], route="oncall")
    assert item["route"] == "oncall"
    assert item["step_id"] == "charge_payment"
    assert item["step_status"] == "needs_manual_review"
    assert item["resolve_as"] == ["completed", "not_applied", "compensated"]


def test_review_item_reason_falls_back_to_the_run_reason() -> None:
    """Without a step reason the run's own reason explains the wait."""
    snapshot = RunSnapshot(run=_run(), steps=(_step("x", StepStatus.NEEDS_MANUAL_REVIEW),))
    assert review_item(snapshot, [])["reason"] == "charge_payment: verify could not tell"


def test_narrator_counts_attempts_per_step_and_undo_attempts_apart() -> None:
    """Each started event is told with its own attempt number, forward and undo separately."""
    lines = narrate_events(
        [
            _event(1, "step_started", "book"),
            _event(2, "step_failed", "book", reason="HTTP 503"),
            _event(3, "step_started", "book"),
            _event(4, "step_started", "pay"),
            _event(5, "compensation_started", "pay"),
        ]
    )
    assert lines[0].startswith("Attempt 1 of book")
    assert "HTTP 503" in lines[1]
    assert lines[2].startswith("Attempt 2 of book")
    assert lines[3].startswith("Attempt 1 of pay")
    assert lines[4].startswith("Undo attempt 1 of pay")


def test_narrator_tells_who_resolved_what_and_why() -> None:
    """A resolution is told with the reviewer's name, the outcome and the note."""
    line = Narrator().tell(
        _event(
            9,
            "resolved",
            "pay",
            data={"by": "alice", "as": "completed", "note": "seen in the dashboard"},
        )
    )
    assert "alice" in line
    assert "completed" in line
    assert "seen in the dashboard" in line


def test_every_event_the_demo_writes_has_its_own_narration() -> None:
    """No event of a real run falls back to the generic wording."""
    store = open_store("memory://")
    events: list[Event] = []
    for scenario in SCENARIOS:
        play(scenario, store=store, on_event=events.append, on_effect=lambda entry: None)
    lines = narrate_events(events)
    generic = [
        line
        for event, line in zip(events, lines, strict=True)
        if line.startswith(event.kind.replace("_", " ").capitalize())
    ]
    assert generic == []
    assert len({e.kind for e in events}) >= 12
