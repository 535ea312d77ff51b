"""Success and failure signals of a step: what each answer looks like, and what follows.

Each :class:`~.profiles.Profile` has its own answers, with protocol codes where they exist
(a card: 402 or a decline; a bank: a rejection reason code; DNS: ``PENDING`` then
``INSYNC``). A spec's ``signals`` overrides any of them. What follows each answer is the
ruling for this step, so the signal a handler author reads and the engine's decision agree.
"""

from __future__ import annotations

from typing import NamedTuple

from sagaguard.model import Step
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import Answer, Signal
from sagaguard.planner.profiles import Profile, profile_of
from sagaguard.planner.reasons import give_up_phrase, unknown_end_phrase
from sagaguard.planner.wording import bound_text, fmt_seconds, verify_text
from sagaguard.rules import Decision, Situation, StepKind

__all__ = ["settle_phrase", "step_signals"]


class _Answers(NamedTuple):
    success: str
    failure: str
    refused: str
    in_progress: str | None
    unknown: str


_BY_PROFILE = {
    Profile.PAYMENT: _Answers(
        "2xx with the charge (or debit) id and a succeeded status",
        "429 (rate limited) or an error the provider marks as not processed: no money moved",
        "402 or a decline (card_declined, insufficient_funds, expired_card)",
        "409 under the same idempotency key: the first request is still being processed",
        "5xx, a timeout or a reset connection: the money may have moved",
    ),
    Profile.BANK_TRANSFER: _Answers(
        "the bank accepts the payment order (pain.002 ACCP/ACSP, later ACSC) with its "
        "end-to-end id",
        "429 or a cut-off/maintenance answer before the order was accepted: nothing sent",
        "RJCT with a reason code (AC04 closed account, AM04 insufficient funds, AC01 wrong "
        "account number)",
        "PDNG (pending) or an order still being screened: accepted, not settled",
        "5xx, a timeout or a reset connection: the order may have been accepted",
    ),
    Profile.FX_TRADE: _Answers(
        "the desk confirms the trade with its trade id, rate and value date",
        "no quote right now (429, the market is moving, a stale rate): nothing booked",
        "the trade is rejected (credit limit exceeded, currency pair not offered)",
        "the trade is pending confirmation",
        "5xx, a timeout or a reset connection: the trade may be booked",
    ),
    Profile.RESERVATION: _Answers(
        "2xx with the reservation id and a held status",
        "429 or 503 answered before anything was held (a lock conflict, busy)",
        "nothing left to reserve (sold out, 409/422 naming the item)",
        "202 accepted: the hold is still being placed",
        "5xx, a timeout or a reset connection: the hold may exist",
    ),
    Profile.EMAIL: _Answers(
        "2xx with the provider's message id (accepted for delivery)",
        "429 or a temporary SMTP reply (421, 450, 451): not accepted this time",
        "a permanent rejection (SMTP 550/553, or an API 4xx naming an invalid or suppressed "
        "recipient)",
        None,
        "an API 5xx, a timeout or a reset connection: the message may be on its way",
    ),
    Profile.SMS: _Answers(
        "2xx with the message id (queued or sent)",
        "429 (throttled): not queued",
        "the number is refused (invalid, unsubscribed or unreachable)",
        None,
        "5xx, a timeout or a reset connection: the message may be queued",
    ),
    Profile.NOTIFICATION: _Answers(
        "2xx with the id of the posted message",
        "429 or 503 (throttled): not posted",
        "the channel or recipient is refused (unknown channel, not allowed to post)",
        None,
        "5xx, a timeout or a reset connection: the message may be posted",
    ),
    Profile.QUEUE: _Answers(
        "the broker confirms the publish (publisher confirm or ack)",
        "a negative ack or flow control before the broker took the message",
        "the broker rejects the message for good (unknown topic or exchange, too large)",
        None,
        "no confirm within the timeout, or the connection closes: the message may be queued",
    ),
    Profile.DNS_CHANGE: _Answers(
        "the provider accepts the change with a change id, and it reaches INSYNC (served by "
        "every authoritative name server)",
        "throttled (429, Throttling, PriorRequestNotComplete) before the change was accepted",
        "the change batch is rejected (InvalidChangeBatch: the record already exists, or "
        "does not match what a delete names)",
        "the change is accepted and PENDING: not yet on every name server",
        "5xx, a timeout or a reset connection: the change may be accepted",
    ),
    Profile.TEST_SUITE: _Answers(
        "the run finishes with every test passing (exit code 0, a green status)",
        "the run could not start or was cut short by the CI system itself (no runner, "
        "infrastructure error): no verdict",
        "tests fail (non-zero exit, failures reported): the same commit fails the same way",
        "the run is still queued or running",
        "the runner died or the run timed out without a verdict",
    ),
    Profile.EXTERNAL_API: _Answers(
        "2xx with the id of what was created",
        "429 or 503 with Retry-After: the request was not processed",
        "a 4xx that rejects the request (400, 403, 404, 422)",
        "409 under the same idempotency key, or 202 accepted: still in progress",
        "other 5xx, a timeout or a reset connection: the effect may exist",
    ),
    Profile.DATABASE: _Answers(
        "the transaction commits",
        "a deadlock or serialization failure (SQLSTATE 40P01, 40001): rolled back, nothing changed",
        "a constraint or validation error (SQLSTATE 23505 unique, 23503 foreign key, 23514 check)",
        None,
        "the connection drops or the statement times out around COMMIT: it may have committed",
    ),
    Profile.READ_ONLY: _Answers(
        "the data is returned",
        "an error answer (503, a rate limit)",
        "the data is not there (404, no row)",
        None,
        "no answer within the timeout or a reset connection (a repeat is harmless)",
    ),
}


def settle_phrase(ctx: Planning, step: Step) -> str:
    """What the engine does with a lost answer of ``step`` (its timeout ruling), briefly."""
    ruling = ctx.ruling(step, Situation.TIMEOUT)
    if ruling.decision is Decision.RETRY:
        key = "" if step.read_only else f" with the same key ({{operation_id}}:{step.id})"
        return f"retried{key}, {bound_text(ruling.bound)}; then {_end_of(ctx, step, ruling.then)}"
    if ruling.decision is Decision.VERIFY:
        settle = ctx.process.verify_after_for(step)
        after = f", counting a 'not found' only after {fmt_seconds(settle)}" if settle else ""
        return (
            f"verified before anything else ({verify_text(step)}){after}; verify cannot tell: "
            f"{unknown_end_phrase(ctx, step)}"
        )
    return _end_of(ctx, step, ruling.decision)


def _end_of(ctx: Planning, step: Step, decision: Decision | None) -> str:
    # A read-only step that never answers fails like any other; a lost answer of a step
    # with an effect stays unknown: a person (or, best-effort, the run goes on).
    if step.read_only:
        return give_up_phrase(ctx, step)
    if ctx.kind(step) is StepKind.VERIFY_UNBOUND:
        return (
            "verify is described but no code is bound, so nothing can ask: "
            + unknown_end_phrase(ctx, step)
        )
    return unknown_end_phrase(ctx, step)


def step_signals(ctx: Planning, step: Step) -> tuple[Signal, ...]:
    """The step's answers in order: success, failure, refused, in progress, unknown."""
    derived = _BY_PROFILE[profile_of(step)]
    declared = step.signals
    failure = ctx.ruling(step, Situation.DEFINITE_FAILURE)
    stored = f"{step.external_id} is committed to the journal" if step.external_id else "recorded"
    settle = settle_phrase(ctx, step)
    thens = {
        Answer.SUCCESS: f"{stored} before the next step starts",
        Answer.FAILURE: (
            f"raise StepFailed: retried, {bound_text(failure.bound)} with backoff; then "
            f"{give_up_phrase(ctx, step)}"
        ),
        Answer.REFUSED: f"raise StepFailed(retry=False): {give_up_phrase(ctx, step)}",
        Answer.IN_PROGRESS: (
            f"never a refusal: raise no StepFailed, it is an unknown outcome, {settle}"
        ),
        Answer.UNKNOWN: f"let the error propagate: {settle}",
    }
    signals = []
    for answer in Answer:
        spec_text = getattr(declared, answer.value) if declared is not None else None
        text = spec_text or getattr(derived, answer.value)
        if text is None:
            continue
        signals.append(
            Signal(
                answer=answer,
                looks_like=" ".join(text.split()),
                then=thens[answer],
                from_spec=spec_text is not None,
            )
        )
    return tuple(signals)
