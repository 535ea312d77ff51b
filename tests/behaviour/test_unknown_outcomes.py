"""Unknown outcomes: never retried blind; verified, retried with one key, or sent to a person."""

from __future__ import annotations

from sagaguard.engine import AlertKind, Engine, RecordingNotifier
from sagaguard.storage import RunStatus, StepStatus
from tests.behaviour.sagas import Provider, checkout


def test_timeout_after_the_charge_is_verified_not_charged_again(engine: Engine) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    snapshot = engine.run(checkout(provider), operation_id="op-t", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(provider.calls("charge_payment")) == 1, "no second charge"
    assert len(provider.calls("charge_payment", "verify")) == 1
    payment = snapshot.step("charge_payment")
    assert payment.external_id == "charge_payment-op-t"
    assert payment.failure_reason == "timed out; verify found it applied", "why it took a check"
    kinds = [e.kind for e in engine.store.events("op-t") if e.step_id == "charge_payment"]
    assert kinds[:4] == ["step_started", "outcome_unknown", "verify_called", "verified_applied"]


def test_timeout_without_effect_is_retried_only_after_verify_says_not_applied(
    engine: Engine,
) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_lost")
    snapshot = engine.run(checkout(provider), operation_id="op-lost", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    ledger = [e.kind for e in provider.ledger if e.step_id == "charge_payment"]
    assert ledger == ["call", "verify", "call"]
    assert len([k for k in provider.effects if k.endswith("charge_payment")]) == 1


def test_unknown_outcome_without_verify_goes_to_a_person_with_an_alert(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    snapshot = engine.run(
        checkout(provider, payment_verify=False), operation_id="op-noverify", input=None
    )
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert snapshot.step("charge_payment").status is StepStatus.NEEDS_MANUAL_REVIEW
    assert len(provider.calls("charge_payment")) == 1
    assert provider.calls("book_delivery") == []
    assert provider.ledger[-1].step_id == "charge_payment", "nothing compensated before a person"
    assert [a.kind for a in notifier.alerts] == [AlertKind.NEEDS_MANUAL_REVIEW]
    assert notifier.alerts[0].route == "finance"


def test_person_resolving_completed_continues_forward_with_the_given_result(
    engine: Engine,
) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    saga = checkout(provider, payment_verify=False)
    engine.run(saga, operation_id="op-rc", input=None)
    done = engine.resolve(
        "op-rc",
        step_id="charge_payment",
        outcome="completed",
        by="bob",
        note="found ch_9 in the PSP dashboard",
        result={"charge_payment_id": "ch_9"},
    )
    assert done.run.status is RunStatus.COMPLETED
    assert done.step("charge_payment").external_id == "ch_9"
    assert len(provider.calls("charge_payment")) == 1
    assert provider.order("call")[-2:] == ["book_delivery", "send_email"]


def test_person_resolving_not_applied_lets_the_step_retry_within_its_bound(
    engine: Engine,
) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_lost")
    saga = checkout(provider, payment_verify=False)
    engine.run(saga, operation_id="op-rn", input=None)
    done = engine.resolve(
        "op-rn", step_id="charge_payment", outcome="not_applied", by="bob", note="no charge in PSP"
    )
    assert done.run.status is RunStatus.COMPLETED
    assert [c.attempt for c in provider.calls("charge_payment")] == [1, 2]


def test_person_resolving_compensated_rolls_back_the_steps_before(engine: Engine) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    saga = checkout(provider, payment_verify=False)
    engine.run(saga, operation_id="op-rcomp", input=None)
    done = engine.resolve(
        "op-rcomp", step_id="charge_payment", outcome="compensated", by="bob", note="refunded"
    )
    assert done.run.status is RunStatus.COMPENSATED
    assert provider.order("compensate") == ["reserve_stock", "create_order"]


def test_idempotent_step_is_retried_with_the_same_key_after_an_unknown_outcome(
    engine: Engine,
) -> None:
    provider = Provider()
    provider.plan("reserve_stock", "error", "timeout_applied")
    snapshot = engine.run(checkout(provider), operation_id="op-idem", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    calls = provider.calls("reserve_stock")
    assert [c.attempt for c in calls] == [1, 2, 3]
    assert {c.key for c in calls} == {"op-idem:reserve_stock"}
    assert provider.calls("reserve_stock", "verify") == []


def test_idempotent_step_that_never_answers_ends_in_review_not_failure(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("reserve_stock", "timeout_lost", "timeout_lost", "timeout_lost")
    snapshot = engine.run(checkout(provider), operation_id="op-idem-x", input=None)
    assert len(provider.calls("reserve_stock")) == 3
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert provider.order("compensate") == [], "an unknown outcome is never compensated"
    assert notifier.alerts[0].route == "shop-oncall"


def test_verify_that_cannot_tell_is_asked_again_within_its_bound_then_a_person(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    """Verify calls are attempts too: each is journaled first, bounded, then review."""
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    provider.verify_script["charge_payment"].extend(["error"] * 3)
    saga = checkout(provider)
    snapshot = engine.run(saga, operation_id="op-verr", input=None)
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    bound = saga.process.max_attempts_for(saga.process.step("charge_payment"))
    assert len(provider.calls("charge_payment", "verify")) == bound
    assert snapshot.step("charge_payment").verify_attempts == bound
    assert len(provider.calls("charge_payment")) == 1, "never charged again"
    assert "verify could not tell" in (snapshot.step("charge_payment").failure_reason or "")
    assert [a.kind for a in notifier.alerts] == [AlertKind.NEEDS_MANUAL_REVIEW]


def test_verify_that_fails_once_is_asked_again_and_settles_the_outcome(engine: Engine) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    provider.verify_script["charge_payment"].append("error")
    snapshot = engine.run(checkout(provider), operation_id="op-verr1", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(provider.calls("charge_payment", "verify")) == 2
    assert len(provider.calls("charge_payment")) == 1
    kinds = [e.kind for e in engine.store.events("op-verr1") if e.step_id == "charge_payment"]
    assert kinds.count("verify_failed") == 1
