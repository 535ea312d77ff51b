"""Alerts survive what happens after the commit that raises them: a crash, a dead channel."""

from __future__ import annotations

import pytest

from sagaguard.engine import Alert, AlertKind, Engine, RecordingNotifier, SimulatedCrash
from sagaguard.engine.outbox import RETRY_BASE_S
from sagaguard.storage import JournalStore, RunStatus
from tests.behaviour.sagas import FakeClock, Provider, checkout


class CrashingNotifier:
    """The process dies the moment it would hand the alert over."""

    def notify(self, alert: Alert) -> None:
        raise SimulatedCrash("killed before the alert left")


class FlakyNotifier(RecordingNotifier):
    """Fails the first ``failures`` deliveries, then takes every alert."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def notify(self, alert: Alert) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("alert channel down")
        super().notify(alert)


def _needs_review(provider: Provider) -> None:
    provider.plan("charge_payment", "timeout_applied")


def test_an_alert_lost_to_a_crash_after_its_commit_is_delivered_by_a_worker(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    _needs_review(provider)
    saga = checkout(provider, payment_verify=False)
    dying = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="dying", notifier=CrashingNotifier()
    )
    with pytest.raises(SimulatedCrash):
        dying.run(saga, operation_id="op-a", input=None)
    assert store.load("op-a").run.status is RunStatus.NEEDS_MANUAL_REVIEW

    notifier = RecordingNotifier()
    worker = Engine(store=store, clock=clock, sleep=clock.sleep, owner="w", notifier=notifier)
    assert worker.deliver_alerts() == 0, "the raiser gets a lease's time to deliver it first"
    clock.advance(worker.lease_s + 1)
    assert worker.deliver_alerts() == 1
    assert worker.deliver_alerts() == 0, "delivered once"
    worker.close()

    [alert] = notifier.alerts
    assert (alert.kind, alert.operation_id, alert.step_id) == (
        AlertKind.NEEDS_MANUAL_REVIEW,
        "op-a",
        "charge_payment",
    )
    assert alert.route == "finance"
    assert store.events("op-a")[-1].kind == "alert_delivered"


def test_a_failed_delivery_is_retried_with_a_pause_and_the_same_alert_id(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    _needs_review(provider)
    notifier = FlakyNotifier(failures=2)
    with Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="e", notifier=notifier
    ) as engine:
        engine.run(checkout(provider, payment_verify=False), operation_id="op-f", input=None)
        assert notifier.alerts == []
        clock.advance(RETRY_BASE_S - 1)
        assert engine.deliver_alerts() == 0, "not before the pause is over"
        clock.advance(1)
        assert engine.deliver_alerts() == 0, "the second attempt fails too"
        clock.advance(2 * RETRY_BASE_S)
        assert engine.deliver_alerts() == 1

    [alert] = notifier.alerts
    kinds = [e.kind for e in store.events("op-f") if e.actor == "notifier"]
    assert kinds == ["alert_failed", "alert_delivered"]
    delivered = store.events("op-f")[-1]
    assert delivered.data == {"alert_id": alert.alert_id, "failed_attempts": 2}


def test_a_delivered_alert_is_not_sent_again_by_a_worker(
    store: JournalStore, clock: FakeClock, notifier: RecordingNotifier, engine: Engine
) -> None:
    provider = Provider()
    _needs_review(provider)
    engine.run(checkout(provider, payment_verify=False), operation_id="op-d", input=None)
    clock.advance(3600)

    assert engine.deliver_alerts() == 0
    assert len(notifier.alerts) == 1


def test_a_compensation_failed_alert_lost_to_a_crash_is_delivered_too(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    provider.always_compensation("charge_payment", "fail")
    dying = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="dying", notifier=CrashingNotifier()
    )
    with pytest.raises(SimulatedCrash):
        dying.run(checkout(provider), operation_id="op-c", input=None)
    notifier = RecordingNotifier()
    clock.advance(3600)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="w", notifier=notifier) as w:
        assert w.deliver_alerts() == 1
    assert [a.kind for a in notifier.alerts] == [AlertKind.COMPENSATION_FAILED]
    assert notifier.alerts[0].step_id == "charge_payment"
