"""Part 1 of the plan: the step table (forward and reverse action, signals, data to persist)."""

from __future__ import annotations

from sagaguard._legacy_rules import Decision, Situation, after_failure, decide
from sagaguard.model import ChangeKind, Idempotency, Process, Step, StepClass
from sagaguard.planner.plan import StepEntry
from sagaguard.planner.wording import (
    alert_to,
    compensation_instruction,
    external_id_phrase,
    fmt_seconds,
    mitigation_for,
    verify_text,
)

__all__ = ["build_steps"]

_SUCCESS_BY_KIND = {
    ChangeKind.DATABASE: "the transaction commits",
    ChangeKind.EXTERNAL_API: "the API answers 2xx",
    ChangeKind.QUEUE: "the broker acknowledges the publish",
    ChangeKind.EMAIL: "the email provider accepts the message and returns its message id",
    ChangeKind.PAYMENT: "the payment provider answers that the charge succeeded",
    ChangeKind.RESERVATION: "the reservation is confirmed",
    ChangeKind.NONE: "the data is returned",
}

# Definite failures worth a retry: the other side turned the call away for now and
# changed nothing, so the same call can succeed a moment later.
_TRANSIENT_BY_KIND = {
    ChangeKind.DATABASE: "a deadlock or serialization failure rolls the transaction back",
    ChangeKind.EXTERNAL_API: "a 429 or 503 answer saying the request was not processed",
    ChangeKind.QUEUE: "the broker refuses the publish for now (flow control, negative ack)",
    ChangeKind.EMAIL: "the provider throttles or turns the message away for now (429, 503)",
    ChangeKind.PAYMENT: (
        "the payment provider answers that it did not process the charge (rate limit, "
        "processing error)"
    ),
    ChangeKind.RESERVATION: "the reservation service is busy (lock conflict, 503), holding nothing",
    ChangeKind.NONE: "an error answer such as a 503 or a rate limit",
}

# Refusals that come back the same on every attempt: a retry cannot turn them around.
_REFUSAL_BY_KIND = {
    ChangeKind.DATABASE: "a constraint or validation error",
    ChangeKind.EXTERNAL_API: "a 4xx answer that rejects the request (400, 409, 422)",
    ChangeKind.QUEUE: "the broker rejects the message for good (unknown topic, message too large)",
    ChangeKind.EMAIL: "the provider rejects the message (invalid address, suppressed recipient)",
    ChangeKind.PAYMENT: "a decline (card declined, insufficient funds)",
    ChangeKind.RESERVATION: "the reservation is refused (nothing left to reserve)",
    ChangeKind.NONE: "a not-found answer",
}

PERSIST_COMMON = ("operation_id", "step_id", "status", "attempts", "last_attempt_at", "reason")


def build_steps(process: Process) -> tuple[StepEntry, ...]:
    """One step-table row per step, in process order."""
    return tuple(_entry(process, index, step) for index, step in enumerate(process.steps))


def _entry(process: Process, index: int, step: Step) -> StepEntry:
    cls = step.step_class
    return StepEntry(
        id=step.id,
        position=index + 1,
        action=step.action_text,
        changes=step.changes,
        idempotent=step.idempotent,
        step_class=cls,
        compensation=compensation_instruction(step) if cls is StepClass.COMPENSATABLE else None,
        mitigation=mitigation_for(step) if cls is StepClass.IRREVERSIBLE else None,
        rollback_condition=rollback_condition(process, index, step),
        persist=persist_fields(step, last=index == len(process.steps) - 1),
        success_signals=success_signals(step),
        failure_signals=failure_signals(process, step),
        verify=step.verify,
        external_id=step.external_id,
        timeout_s=process.timeout_for(step),
        max_attempts=process.max_attempts_for(step),
        alert_route=process.alert_route(step),
    )


def persist_fields(step: Step, *, last: bool = False) -> tuple[str, ...]:
    """Journal fields that must be saved for the step before the run moves on.

    ``last``: the step ends the process, so it is never compensated and keeps no
    compensation count.
    """
    fields = ["operation_id", "step_id"]
    if step.external_id:
        fields.append(step.external_id)
    if not step.read_only:
        fields.append("idempotency_key")
    fields += ["status", "attempts", "last_attempt_at", "reason"]
    if step.step_class is StepClass.COMPENSATABLE and not last:
        fields.append("compensation_attempts")
    return tuple(fields)


def rollback_condition(process: Process, index: int, step: Step) -> str:
    """When the step's compensation must NOT run, worded for this step."""
    cls = step.step_class
    if cls is StepClass.READ_ONLY:
        return f"always: {step.id} changes nothing, so there is nothing to undo"
    if cls is StepClass.IRREVERSIBLE and index < len(process.steps) - 1:
        if step.compensation_declared:
            return f"always: {step.id} cannot be undone; apply its mitigation instead"
        return (
            f"always: {step.id} declares no compensation, so nothing can undo it; declare one, "
            "or `compensation: none` with a mitigation"
        )
    if index == len(process.steps) - 1:
        # No step runs after the last, so no rollback ever reaches it, whatever its class.
        if cls is StepClass.IRREVERSIBLE:
            return (
                f"always: {step.id} is the last step, so no later step can fail and no "
                "rollback reaches it (it could not be undone anyway)"
            )
        return (
            f"always: {step.id} is the last step, so no later step can fail and its "
            "compensation never runs"
        )
    ident = external_id_phrase(step)
    later = [s.id for s in process.steps[index + 1 :] if s.step_class is StepClass.COMPENSATABLE]
    settle = {
        Decision.RETRY: "retry it with the same idempotency key first",
        Decision.VERIFY: "verify it first",
        Decision.MANUAL_REVIEW: "a person decides first",
    }[decide(step, Situation.TIMEOUT).decision]
    conditions = [
        f"while {step.id}'s outcome is unknown (status started or unknown): {settle}",
        f"when {step.id} never completed (no {ident} in the journal)",
        f"when {step.id} is already compensated (each undo succeeds at most once)",
    ]
    if later:
        conditions.insert(
            2, f"before {', '.join(reversed(later))} {_are(later)} compensated (latest first)"
        )
    return "; ".join(conditions)


def _are(items: list[str]) -> str:
    return "is" if len(items) == 1 else "are"


def success_signals(step: Step) -> tuple[str, ...]:
    """What tells the step succeeded."""
    signals = [_SUCCESS_BY_KIND[kind] for kind in step.changes]
    if step.external_id:
        signals.append(f"{step.external_id} is returned and committed to the journal")
    if step.verify:
        signals.append(f"verify finds it ({verify_text(step)})")
    return tuple(signals)


def failure_signals(process: Process, step: Step) -> tuple[str, ...]:
    """What tells the step failed: a passing failure, a lasting refusal, an unknown outcome.

    The engine retries every definite failure within the step's bound, but only a passing
    one (a deadlock, a 503) can succeed on a later attempt; a lasting refusal (a constraint
    violation, a decline) is worded as the end of the run it is, not as something to retry.
    """
    attempts = process.max_attempts_for(step)
    # Phrases of several kinds contain "or" themselves: "or else" keeps them apart.
    transient = ", or else ".join(_TRANSIENT_BY_KIND[kind] for kind in step.changes)
    refusals = ", or else ".join(_REFUSAL_BY_KIND[kind] for kind in step.changes)
    _, ends = after_failure(step, process)
    if attempts > 1:
        retried = f"so it is retried, up to {attempts} attempts with backoff"
    else:
        retried = "but max_attempts: 1 allows no second one"
    signals = [
        f"definite failure: {transient}; nothing changed and a later attempt can succeed, "
        + retried,
        f"definite refusal: {refusals}; nothing changed, but a repeat gets the same answer: {ends}",
    ]
    unknown = decide(step, Situation.TIMEOUT)
    timeout = fmt_seconds(process.timeout_for(step))
    if step.read_only:
        then = "retried, a repeat is harmless"
    elif step.idempotent is Idempotency.YES:
        then = (
            f"retried with the same idempotency key ({{operation_id}}:{step.id}); still no "
            f"answer after {attempts} attempts: needs_manual_review, alert to "
            f"{alert_to(process, step)}"
        )
    else:
        then = {
            Decision.VERIFY: f"verified before anything else ({verify_text(step)})",
            Decision.MANUAL_REVIEW: "a person decides before anything else (manual review)",
        }.get(unknown.decision, unknown.decision.value)
    signals.append(
        f"outcome unknown: no answer within {timeout}, a dropped connection, or a crash before "
        f"the result was saved; {then}"
    )
    return tuple(signals)
