"""Shared judgements and phrases of the planner, so every part of a plan says the same thing.

Which step is the riskiest, which steps can still fail, what to do instead of undoing an
irreversible step, who is alerted and how durations read: each plan part asks here, so
the step table, the rollback sequences and the tests never word one fact two ways.
"""

from __future__ import annotations

import hashlib
import re

from sagaguard.model import (
    IMPORT_PATH_PATTERN,
    ChangeKind,
    Idempotency,
    Process,
    StateStore,
    Step,
    StepClass,
)
from sagaguard.planner.plan import RunStatus

# Why a step of each kind is risky; money first (the guide: money goes to a person).
_RISK_BY_KIND = {
    ChangeKind.PAYMENT: 8,
    ChangeKind.EXTERNAL_API: 2,
    ChangeKind.EMAIL: 2,
    ChangeKind.RESERVATION: 2,
    ChangeKind.QUEUE: 1,
    ChangeKind.DATABASE: 0,
    ChangeKind.NONE: 0,
}

# Kinds whose call can be refused for good even when a repeat is safe (a declined card,
# stock that ran out): such a step can still fail after an irreversible one.
_REFUSABLE_KINDS = frozenset({ChangeKind.PAYMENT, ChangeKind.RESERVATION})


def fmt_seconds(seconds: float) -> str:
    """``0.2`` -> ``200ms``, ``10.0`` -> ``10s``, ``120.0`` -> ``2m``, ``7200.0`` -> ``2h``."""
    if seconds < 1:
        return f"{round(seconds * 1000):d}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def side_effecting(step: Step) -> bool:
    """True when the step changes something in the world."""
    return not step.read_only


def can_still_fail(step: Step) -> bool:
    """True when the step can end the run in failure although everything before it succeeded.

    A step that is safe to repeat eventually succeeds by retrying; one that is not (or one
    the other side may refuse outright, like a card decline) can fail for good.
    """
    if step.read_only:
        return False
    return not step.safe_to_repeat or any(k in _REFUSABLE_KINDS for k in step.changes)


def risk_score(step: Step) -> int:
    """How much damage a blind retry or a lost answer of this step can do (higher = worse)."""
    if step.read_only:
        return 0
    score = max(_RISK_BY_KIND[k] for k in step.changes)
    if step.idempotent is not Idempotency.YES:
        score += 4
        if not step.has_verify:
            score += 2
    if step.step_class is StepClass.IRREVERSIBLE:
        score += 1
    return score


def riskiest(steps: tuple[Step, ...] | list[Step]) -> Step | None:
    """The riskiest of ``steps`` (the earliest on a tie), or None when there are none."""
    best: Step | None = None
    for step in steps:
        if best is None or risk_score(step) > risk_score(best):
            best = step
    return best


def external_id_phrase(step: Step) -> str:
    """How the journal names the step's external object: ``its payment_id`` or a fallback."""
    if step.external_id:
        return step.external_id
    return f"the result of {step.id}"


def mitigation_for(step: Step) -> str:
    """What to do instead of undoing an irreversible step: the spec's, else one from its changes."""
    if step.mitigation:
        return step.mitigation
    ref = f" (by {step.external_id})" if step.external_id else ""
    kinds = set(step.changes)
    if ChangeKind.PAYMENT in kinds:
        return (
            f"hand the money moved by {step.id}{ref} to a person: refund it by hand or keep it "
            "and finish the order by hand; never charge again"
        )
    if ChangeKind.EMAIL in kinds:
        return (
            f"send a correction that explains the state (the run for this operation_id was "
            f"rolled back); never resend the original message of {step.id}"
        )
    if ChangeKind.QUEUE in kinds:
        return (
            f"publish a cancelling message{ref} carrying the operation_id so consumers of "
            f"{step.id}'s message undo or ignore it; never publish the original again"
        )
    if ChangeKind.RESERVATION in kinds:
        return (
            f"let the hold made by {step.id}{ref} expire, or release it by hand; "
            "never reserve again for this operation_id"
        )
    if ChangeKind.EXTERNAL_API in kinds:
        return (
            f"record what {step.id} created{ref} and ask its owner to reverse it by hand; "
            "never repeat the call for this operation_id"
        )
    return (
        f"write a correcting record that voids what {step.id} wrote{ref} (keep the original "
        "for the audit trail); never write it a second time"
    )


def described(text: str) -> str:
    """Spec text as a reader takes it: a ``module:function`` binding reads ``code: ...``.

    A runnable spec may bind verify to code; quoted bare, the import path would read as a
    sentence that makes no sense.
    """
    return f"code: {text}" if re.match(IMPORT_PATH_PATTERN, text) else text


def verify_text(step: Step) -> str:
    """How the step's real outcome is learned, readable whether it is words or code."""
    return described(step.verify or "")


def compensation_text(step: Step) -> str:
    """The step's declared compensation, readable whether it is words or code."""
    return described(step.compensation or "")


def compensation_instruction(step: Step) -> str:
    """The compensation of a compensatable step, with the journal id it must address."""
    text = compensation_text(step).rstrip(".")
    if step.external_id and step.external_id not in text:
        return f"{text}, by the {step.external_id} saved in the journal"
    return text


def missing_route_hint(step: Step | None) -> str:
    """What to add to ``alerts`` when nobody is routed for ``step``."""
    if step is not None and ChangeKind.PAYMENT in step.changes:
        return "no route: add alerts.payment or alerts.default"
    return "no route: add alerts.default"


def alert_to(process: Process, step: Step | None) -> str:
    """Who is alerted about ``step``, or the instruction to add a route."""
    return process.alert_route(step) or missing_route_hint(step)


def sample_operation_id(process: Process) -> str:
    """A deterministic example operation_id for journal rows shown in the plan."""
    digest = hashlib.sha256(process.name.encode()).hexdigest()[:8]
    return f"op-{digest}"


def sample_external_id(process: Process, step: Step) -> str | None:
    """A deterministic example value of the step's external id, e.g. ``payment_id=pay_3f9c1a``."""
    if not step.external_id:
        return None
    stem = step.external_id.removesuffix("_id").removesuffix("id").strip("_") or "ext"
    digest = hashlib.sha256(f"{process.name}:{step.id}".encode()).hexdigest()[:6]
    return f"{step.external_id}={stem[:3].lower()}_{digest}"


_OWNER_BY_STORE = {
    StateStore.DATABASE: (
        "lock the run row with SELECT ... FOR UPDATE and claim it by setting owner, "
        "lease_expires_at and a new fencing token in the same transaction; every later write "
        "carries the token and is rejected when it is stale"
    ),
    StateStore.KEY_VALUE: (
        "take a compare-and-set lease key with expiry (e.g. SET lease:{process}:{operation_id} "
        "<owner> NX PX <ttl>) and a fencing token from an atomic counter (INCR "
        "fence:{process}:{operation_id}); every write carries the token and the store rejects "
        "a stale one (check-and-write in one script)"
    ),
    StateStore.JOBS_TABLE: (
        "claim the job row with SELECT ... FOR UPDATE SKIP LOCKED, set owner and lease expiry "
        "and bump a fencing token that every later write checks"
    ),
    StateStore.EVENT_LOG: (
        "append a claim event with the expected stream version (optimistic concurrency) and "
        "check the version on every later append: a writer holding a stale version is "
        "rejected, so one claim wins"
    ),
    StateStore.STATE_MACHINE: (
        "use the state machine's conditional transition (only from the current state and "
        "version) to claim the run; a second worker's transition is rejected, and the version "
        "acts as the fencing token for every later write"
    ),
}


def single_owner_mechanism(process: Process) -> str:
    """How the process's state store gives one run exactly one rollback owner."""
    return _OWNER_BY_STORE[process.state_store].replace("{process}", process.name)


def rollback_status(process: Process, failed_index: int) -> RunStatus:
    """How a run ends when step ``failed_index`` fails for good and every undo succeeds.

    ``compensated`` once any step before it changed something (undone, or kept with its
    mitigation when irreversible), ``failed`` when nothing before it changed anything:
    the same rule the engine applies when its rollback finishes.
    """
    if any(side_effecting(s) for s in process.steps[:failed_index]):
        return RunStatus.COMPENSATED
    return RunStatus.FAILED
