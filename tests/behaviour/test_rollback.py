"""Rollback: reverse order of completion, each compensation once, irreversible steps kept."""

from __future__ import annotations

import pytest

from sagaguard.engine import AlertKind, Engine, RecordingNotifier, Resolution
from sagaguard.storage import RunStatus, StepStatus
from tests.behaviour.sagas import CHECKOUT_STEPS, FakeClock, Provider, checkout

COMPENSATABLE = ["create_order", "reserve_stock", "charge_payment", "book_delivery"]


@pytest.mark.parametrize("failing", CHECKOUT_STEPS)
def test_failure_after_each_step_compensates_earlier_steps_in_reverse_once(
    engine: Engine, failing: str
) -> None:
    provider = Provider()
    provider.plan(failing, "fail", "fail", "fail")
    snapshot = engine.run(checkout(provider), operation_id=f"op-{failing}", input=None)

    before = CHECKOUT_STEPS[: CHECKOUT_STEPS.index(failing)]
    expected = [s for s in reversed(before) if s in COMPENSATABLE]
    assert provider.order("compensate") == expected
    assert snapshot.step(failing).status is StepStatus.FAILED
    assert snapshot.step(failing).attempts == 3
    for step_id in expected:
        assert snapshot.step(step_id).status is StepStatus.COMPENSATED
    for step_id in CHECKOUT_STEPS[CHECKOUT_STEPS.index(failing) + 1 :]:
        assert snapshot.step(step_id).status is StepStatus.PENDING
        assert provider.calls(step_id) == []
    want = RunStatus.COMPENSATED if before else RunStatus.FAILED
    assert snapshot.run.status is want
    assert snapshot.run.owner is None


def test_compensation_receives_the_undone_steps_result_and_external_id(engine: Engine) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    seen = []
    original = provider.compensate

    def compensate(ctx: object) -> None:
        seen.append(ctx)
        original(ctx)  # type: ignore[arg-type]

    saga = checkout(provider)
    saga._definitions[2].compensate_fn = compensate  # the payment step
    saga._invalidate()
    engine.run(saga, operation_id="op-refund", input=None)
    refund = seen[0]
    assert refund.step_id == "charge_payment"
    assert refund.external_id == "charge_payment-op-refund"
    assert refund.result == {"charge_payment_id": "charge_payment-op-refund"}
    assert refund.idempotency_key == "op-refund:charge_payment"


def test_compensation_that_fails_definitely_is_retried_within_its_bound(engine: Engine) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    provider.plan_compensation("charge_payment", "fail")
    snapshot = engine.run(checkout(provider), operation_id="op-cretry", input=None)
    assert snapshot.run.status is RunStatus.COMPENSATED
    assert len(provider.calls("charge_payment", "compensate")) == 2
    assert snapshot.step("charge_payment").compensation_attempts == 2


def test_failed_compensation_halts_the_rollback_alerts_and_waits_for_a_person(
    engine: Engine, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    provider.always_compensation("charge_payment", "fail")
    saga = checkout(provider)
    snapshot = engine.run(saga, operation_id="op-cfail", input=None)

    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    payment = snapshot.step("charge_payment")
    assert payment.status is StepStatus.COMPENSATION_FAILED
    # Retried with backoff for the whole window (at least its attempts), then a person.
    defaults = saga.process.defaults
    tries = provider.calls("charge_payment", "compensate")
    assert len(tries) == payment.compensation_attempts >= defaults.compensation_attempts
    assert payment.compensation_first_at is not None
    assert clock.now - payment.compensation_first_at >= defaults.compensation_retry_for
    assert max(clock.sleeps) <= defaults.backoff_max
    assert snapshot.step("reserve_stock").status is StepStatus.COMPLETED, "rollback halted"
    assert provider.calls("reserve_stock", "compensate") == []
    events = [e.kind for e in engine.store.events("op-cfail")]
    assert events.count("compensation_failed") == 1
    assert [a.kind for a in notifier.alerts] == [AlertKind.COMPENSATION_FAILED]
    assert notifier.alerts[0].route == "finance", "money goes to the payment route"
    assert notifier.alerts[0].step_id == "charge_payment"
    assert snapshot.run.owner is None

    resumed = engine.resolve(
        "op-cfail",
        step_id="charge_payment",
        outcome="compensated",
        by="alice",
        note="refunded in PSP",
    )
    assert resumed.run.status is RunStatus.COMPENSATED
    assert provider.order("compensate")[-2:] == ["reserve_stock", "create_order"]
    assert len(provider.calls("charge_payment", "compensate")) == len(tries), "not retried after"
    resolved = [e for e in engine.store.events("op-cfail") if e.kind == "resolved"]
    assert resolved[0].actor == "review:alice"
    assert resolved[0].data["note"] == "refunded in PSP"


def test_compensation_with_unknown_outcome_is_not_repeated(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    provider.plan_compensation("reserve_stock", "error")
    snapshot = engine.run(checkout(provider), operation_id="op-cunk", input=None)
    assert len(provider.calls("reserve_stock", "compensate")) == 1
    assert snapshot.step("reserve_stock").status is StepStatus.COMPENSATION_FAILED
    assert snapshot.step("charge_payment").status is StepStatus.COMPENSATED
    assert notifier.alerts[0].route == "shop-oncall"


def test_irreversible_step_is_kept_with_its_mitigation(engine: Engine) -> None:
    """A best-effort email before a failing step cannot be unsent: the rollback keeps it."""
    from sagaguard.engine import Saga

    provider = Provider()
    saga = Saga("notify-then-fail", alerts={"default": "ops"})
    reserve = saga.step(id="reserve", changes=["reservation"], idempotent="yes")(provider.forward)
    reserve.compensate(provider.compensate)
    saga.step(
        id="email",
        changes=["email"],
        idempotent="no",
        compensation="none",
        mitigation="send a fix",
        required=False,
    )(provider.forward)
    saga.step(id="ship", changes=["external_api"], idempotent="yes")(provider.forward)
    provider.plan("ship", "fail", "fail", "fail")
    snapshot = engine.run(saga, operation_id="op-irr", input=None)
    pivot = saga.process.pivot
    assert pivot is not None
    assert pivot.id == "ship", "a best-effort step is never the pivot"
    assert snapshot.run.status is RunStatus.COMPENSATED
    assert provider.order("compensate") == ["reserve"]
    email = snapshot.step("email")
    assert (email.status, email.kept) == (StepStatus.COMPLETED, True)
    assert "send a fix" in (email.failure_reason or "")
    assert "email" in (snapshot.run.reason or "")


def test_resolution_that_does_not_fit_the_state_is_refused(engine: Engine) -> None:
    from sagaguard import ResolutionError

    provider = Provider()
    engine.run(checkout(provider), operation_id="op-done", input=None)
    with pytest.raises(ResolutionError):
        engine.resolve(
            "op-done", step_id="charge_payment", outcome=Resolution.COMPLETED, by="b", note="x"
        )


def test_a_refusal_for_good_is_not_retried_and_rolls_back_at_once(engine: Engine) -> None:
    """A declined card declines again: StepFailed(retry=False) spends no more attempts."""
    provider = Provider()
    provider.plan("charge_payment", "refuse")
    snapshot = engine.run(checkout(provider), operation_id="op-decline", input=None)

    assert snapshot.run.status is RunStatus.COMPENSATED
    assert len(provider.calls("charge_payment")) == 1
    assert provider.order("compensate") == ["reserve_stock", "create_order"]
    reason = snapshot.step("charge_payment").failure_reason or ""
    assert reason.startswith("refused for good on attempt 1")


def test_a_compensation_refused_for_good_halts_the_rollback_at_once(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "refuse")
    provider.plan_compensation("charge_payment", "refuse")
    snapshot = engine.run(checkout(provider), operation_id="op-norefund", input=None)

    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert snapshot.step("charge_payment").status is StepStatus.COMPENSATION_FAILED
    assert len(provider.calls("charge_payment", "compensate")) == 1, "not retried"
    assert provider.calls("reserve_stock", "compensate") == [], "the rollback halted"
    assert [a.kind for a in notifier.alerts] == [AlertKind.COMPENSATION_FAILED]
