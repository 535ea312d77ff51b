"""The review queue: each waiting run, its step, why, who was alerted and whether they were told.

Runs are stopped for review by the real engine on the in-memory store (a charge whose outcome
is unknown and cannot be verified, a refund that fails); single fields are pinned on records
built by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.journal_records import T0, event, run_record, snapshot

from sagaguard import StepFailed
from sagaguard.engine import Engine, RecordingNotifier, Saga, StepContext
from sagaguard.engine.alerts import Alert
from sagaguard.engine.resolution import Resolution
from sagaguard.operator import (
    AlertNotice,
    NextMove,
    WaitingRun,
    next_move,
    review_item,
    review_queue,
    waiting_step,
)
from sagaguard.storage.base import RunSnapshot, RunStatus, StepStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.vocabulary import EventKind


def _checkout(*, refund_fails: bool = False) -> Saga:
    saga = Saga("checkout", alerts={"default": "shop-oncall", "payment": "finance"})

    @saga.step(changes=["payment"], idempotent="unknown", external_id="payment_id")
    def charge(ctx: StepContext) -> dict[str, Any]:
        if ctx.input.get("lose_answer"):
            raise TimeoutError("the PSP did not answer")
        return {"payment_id": f"pay-{ctx.operation_id}"}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        if refund_fails:
            raise ConnectionError("refunds are down")

    @saga.step(changes=["external_api"], idempotent="yes")
    def book(ctx: StepContext) -> dict[str, Any]:
        raise StepFailed("no carrier", retry=False)

    return saga


class FailingNotifier:
    """An alert channel that is down."""

    def notify(self, alert: Alert) -> None:
        raise ConnectionError("webhook down")


@pytest.fixture
def store() -> Iterator[InMemoryStore]:
    opened = InMemoryStore()
    yield opened
    opened.close()


def _run(store: InMemoryStore, op: str, saga: Saga, notifier: Any = None, **input: Any) -> None:
    with Engine(store=store, notifier=notifier or RecordingNotifier(), sleep=lambda s: None) as e:
        e.run(saga, operation_id=op, input=input)


def test_the_queue_lists_every_waiting_run_newest_first_with_its_step_and_why(
    store: InMemoryStore,
) -> None:
    _run(store, "o-1", _checkout(), lose_answer=True)
    _run(store, "o-2", _checkout(refund_fails=True))
    _run(store, "o-3", _checkout())  # compensated: not waiting

    queue = review_queue(store)

    assert [item.operation_id for item in queue] == ["o-2", "o-1"]
    refund, charge = queue
    assert (charge.step_id, charge.step_status) == ("charge", StepStatus.NEEDS_MANUAL_REVIEW)
    assert charge.reason == store.load("o-1").step("charge").failure_reason
    assert charge.reason
    assert charge.resolve_as == tuple(Resolution)
    assert (refund.step_id, refund.step_status) == ("charge", StepStatus.COMPENSATION_FAILED)
    assert refund.resolve_as == (Resolution.COMPENSATED,)
    assert all(item.waiting_since == store.load(item.operation_id).run.updated_at for item in queue)


def test_each_item_says_which_route_was_alerted_and_that_it_was_delivered(
    store: InMemoryStore,
) -> None:
    _run(store, "o-1", _checkout(), lose_answer=True)

    (item,) = review_queue(store)

    assert item.route == "finance"  # money goes to the payment route
    assert item.alert is not None
    assert item.alert.route == "finance"
    assert item.alert.delivered
    assert not item.alert.delivery_failed
    delivered = [e for e in store.events("o-1") if e.kind == EventKind.ALERT_DELIVERED]
    assert [e.data["alert_id"] for e in delivered] == [item.alert.alert_id]


def test_an_alert_whose_delivery_failed_is_shown_undelivered(store: InMemoryStore) -> None:
    _run(store, "o-1", _checkout(), FailingNotifier(), lose_answer=True)

    (item,) = review_queue(store)

    assert item.alert is not None
    assert (item.alert.delivered, item.alert.delivery_failed) == (False, True)
    assert item.to_json()["alert"] == {
        "alert_id": item.alert.alert_id,
        "route": "finance",
        "delivered": False,
        "delivery_failed": True,
    }


def test_completed_needs_the_external_id_the_charge_persists(store: InMemoryStore) -> None:
    _run(store, "o-1", _checkout(), lose_answer=True)

    (item,) = review_queue(store)

    completed = item.resolutions[0]
    assert (completed.outcome, completed.result_field) == (Resolution.COMPLETED, "payment_id")
    assert item.to_json()["resolutions"][0] == {
        "outcome": "completed",
        "takes_result": True,
        "result_field": "payment_id",
        "run_goes_to": "running",
    }


def test_the_queue_stops_at_the_limit(store: InMemoryStore) -> None:
    for n in range(3):
        _run(store, f"o-{n}", _checkout(), lose_answer=True)

    assert [item.operation_id for item in review_queue(store, limit=2)] == ["o-2", "o-1"]


def test_the_saga_gives_the_route_the_journal_did_not_record() -> None:
    """An older journal's alert events carry no route: the saga's alerts map supplies it."""
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    process = _checkout().process
    older = process.model_copy(update={"name": "checkout", "version": "2"})

    item = review_item(waiting, [event(5, "needs_manual_review", "charge")], process=older)

    assert item.route == "finance"
    assert item.alert is None


def test_a_route_journaled_with_the_alert_wins_over_the_saga_s() -> None:
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    recorded = [event(5, "needs_manual_review", "charge", data={"route": "ops", "alert_id": "a"})]

    item = review_item(waiting, recorded, process=_checkout().process)

    assert item.route == "ops"
    assert item.alert == AlertNotice("a", "ops", delivered=False, delivery_failed=False)


def test_an_alert_delivered_after_a_failure_counts_as_delivered() -> None:
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    trail = [
        event(5, "needs_manual_review", "charge", data={"route": "ops", "alert_id": "a"}),
        event(6, "alert_failed", data={"alert_id": "a"}),
        event(7, "alert_failed", data={"alert_id": "other"}),
        event(8, "alert_delivered", data={"alert_id": "a", "failed_attempts": 1}),
    ]

    alert = review_item(waiting, trail).alert

    assert alert == AlertNotice("a", "ops", delivered=True, delivery_failed=False)


def test_the_latest_alert_of_the_waiting_step_is_the_one_shown() -> None:
    """A step reviewed, resolved and stopped again: the new alert, not the delivered old one."""
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    trail = [
        event(5, "needs_manual_review", "charge", data={"route": "ops", "alert_id": "old"}),
        event(6, "alert_delivered", data={"alert_id": "old"}),
        event(9, "needs_manual_review", "charge", data={"route": "ops", "alert_id": "new"}),
    ]

    alert = review_item(waiting, trail).alert

    assert alert is not None
    assert (alert.alert_id, alert.delivered) == ("new", False)


def test_without_a_step_reason_the_run_s_own_reason_explains_the_wait() -> None:
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("x", StepStatus.NEEDS_MANUAL_REVIEW))

    assert review_item(waiting, []).reason == "charge_payment: verify could not tell"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((StepStatus.COMPLETED, StepStatus.NEEDS_MANUAL_REVIEW), "b"),
        ((StepStatus.COMPENSATION_FAILED, StepStatus.COMPENSATED), "a"),
        ((StepStatus.COMPLETED, StepStatus.PENDING), None),
    ],
)
def test_the_waiting_step_is_the_one_held_for_review(
    statuses: tuple[StepStatus, StepStatus], expected: str | None
) -> None:
    run: RunSnapshot = snapshot(
        RunStatus.NEEDS_MANUAL_REVIEW, ("a", statuses[0]), ("b", statuses[1])
    )
    found = waiting_step(run)
    assert (found.step_id if found else None) == expected


def test_a_run_with_no_waiting_step_offers_nothing() -> None:
    odd = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("a", StepStatus.COMPLETED))

    item = review_item(odd, [])

    assert (item.step_id, item.alert, item.resolutions) == (None, None, ())
    assert item.to_json()["resolve_as"] == []


REVIEW_ROW_KEYS = [
    "operation_id",
    "process",
    "version",
    "waiting_since",
    "step_id",
    "step_status",
    "reason",
    "route",
    "resolve_as",
]
"""What ``review list --json`` prints of each run, key for key: scripts read it."""


def test_a_queue_row_has_the_columns_review_list_always_printed() -> None:
    run = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    trail = [event(5, "needs_manual_review", "charge", data={"route": "ops", "alert_id": "a"})]
    item = review_item(run, trail)

    row = item.to_row_json()

    assert list(row) == REVIEW_ROW_KEYS
    assert row["route"] == "ops"
    assert row["resolve_as"] == ["completed", "not_applied", "compensated"]
    assert row["waiting_since"] == "2025-06-15T15:06:41.750Z"
    assert list(item.to_json()) == [*REVIEW_ROW_KEYS, "alert", "resolutions"]
    assert item.to_json() | row == item.to_json()


def test_a_queue_item_is_the_waiting_run_the_counts_name() -> None:
    item = review_item(snapshot(RunStatus.NEEDS_MANUAL_REVIEW), [])

    waiting = WaitingRun.of(run_record())

    assert waiting == WaitingRun("order-7", "checkout", "2", T0 + 1.5)
    assert item.to_json() | waiting.to_json() == item.to_json()


@pytest.mark.parametrize(
    ("status", "continued", "expected"),
    [
        (RunStatus.RUNNING, False, NextMove.WORKER),
        (RunStatus.COMPENSATING, False, NextMove.WORKER),
        (RunStatus.NEEDS_MANUAL_REVIEW, False, NextMove.REVIEW),
        (RunStatus.NEEDS_MANUAL_REVIEW, True, NextMove.REVIEW),
        (RunStatus.COMPLETED, True, NextMove.NONE),
        (RunStatus.COMPENSATED, False, NextMove.NONE),
        (RunStatus.RUNNING, True, NextMove.NONE),
    ],
)
def test_after_a_finding_the_next_move_is_a_worker_s_a_person_s_or_none(
    status: RunStatus, continued: bool, expected: NextMove
) -> None:
    assert next_move(snapshot(status), continued=continued) is expected
