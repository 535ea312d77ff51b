"""Part 7 of the plan: findings, the problems of the process design itself.

Codes are stable (documented in ``docs/plan-json.md``); a new check gets a new code:

    SG001 warning  pivot ordering: an effect a rollback would keep, a notification as the
                   pivot, or a refusable step after the pivot (:mod:`.pivot_findings`)
    SG002 warning  a side-effecting step declares no compensation (info when no rollback
                   of the engine can reach it)
    SG003 error    a payment step is neither idempotent nor has any verify
    SG004 warning  more than 20 steps
    SG005 warning  idempotency unknown and no verify
    SG006 warning  not idempotent and no verify (info for a best-effort step)
    SG007 info     idempotency unknown, covered by verify code: confirm with the provider
    SG008 warning  no alert route for steps that can raise an alert
    SG009 warning  no dead-letter queue among the observability
    SG010 warning  no alerting among the observability
    SG011 warning  a step the engine compensates persists no external id
    SG012 info     an irreversible step declares no mitigation (the plan derives one)
    SG013 info     a read-only step declares a compensation, which never runs
    SG014 error    a required notification whose failure would give money back
    SG015 error    a case can wait for a person, and nobody is told: no route, no alerting
    SG016 warning  verify is described but no code is bound: lost answers go to a person
"""

from __future__ import annotations

from collections.abc import Callable

from sagaguard.model import (
    MAX_PLANNED_STEPS,
    ChangeKind,
    Idempotency,
    Observability,
    Step,
)
from sagaguard.planner.context import Planning
from sagaguard.planner.impact import riskiest
from sagaguard.planner.pivot_findings import pivot_findings
from sagaguard.planner.plan import Finding, Severity
from sagaguard.planner.profiles import lookup_place, provider_of
from sagaguard.planner.wording import compensation_text, few, mitigation_for, verify_text
from sagaguard.rules import Decision, Situation, StepKind

__all__ = ["FINDING_CODES", "build_findings", "review_steps"]

FINDING_CODES = {
    "SG001": (
        "pivot ordering: an effect a rollback would keep, a notification as the pivot, or a "
        "step after the pivot that can be refused"
    ),
    "SG002": "a side-effecting step declares no compensation",
    "SG003": "a payment step is neither idempotent nor verifiable",
    "SG004": "more than 20 steps",
    "SG005": "idempotency unknown and no verify",
    "SG006": "not idempotent and no verify",
    "SG007": "idempotency unknown, covered by verify: confirm with the provider",
    "SG008": "no alert route for steps that can raise an alert",
    "SG009": "no dead-letter queue",
    "SG010": "no alerting",
    "SG011": "a compensated step persists no external id",
    "SG012": "an irreversible step declares no mitigation",
    "SG013": "a read-only step declares a compensation",
    "SG014": "a required notification whose failure would give money back",
    "SG015": "a case can wait for a person and nobody is told",
    "SG016": "verify is described but not bound to code",
}

_Add = Callable[[Severity, str, str], None]

_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

_REVERSE_BY_KIND = {
    ChangeKind.DATABASE: "void the row it wrote",
    ChangeKind.EXTERNAL_API: "cancel what it created",
    ChangeKind.QUEUE: "publish a cancelling message",
    ChangeKind.PAYMENT: "refund the charge",
    ChangeKind.RESERVATION: "release the reservation",
}

_REVIEW_SITUATIONS = (
    Situation.DEFINITE_FAILURE,
    Situation.REFUSED,
    Situation.TIMEOUT,
    Situation.CALL_IN_FLIGHT,
    Situation.VERIFY_FAILED,
    Situation.COMPENSATION_FAILED,
)


def build_findings(ctx: Planning) -> tuple[Finding, ...]:
    """Every finding of the process, errors first, then in step order."""
    found: list[tuple[int, Finding]] = []
    for index, step in enumerate(ctx.steps):
        found += [(index, f) for f in _step_findings(ctx, index, step)]
    found += pivot_findings(ctx)
    found += [(len(ctx.steps), f) for f in _process_findings(ctx)]
    found.sort(key=lambda pair: (_SEVERITY_RANK[pair[1].severity], pair[0], pair[1].code))
    return tuple(f for _, f in found)


def review_steps(ctx: Planning) -> list[Step]:
    """Steps whose rulings can end with a person (needs_manual_review), in process order."""
    return [
        s
        for s in ctx.steps
        if any(ctx.ruling(s, sit).ends is Decision.MANUAL_REVIEW for sit in _REVIEW_SITUATIONS)
    ]


def _step_findings(ctx: Planning, index: int, step: Step) -> list[Finding]:
    out: list[Finding] = []

    def add(severity: Severity, code: str, message: str) -> None:
        out.append(Finding(severity=severity, step=step.id, code=code, message=message))

    kinds = ", ".join(k.value for k in step.changes)
    key = f"{{operation_id}}:{step.id}"
    visit = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision
    if step.irreversible and not step.read_only and not step.mitigation:
        add(
            Severity.INFO,
            "SG012",
            f"{step.id} is irreversible and declares no mitigation; the plan uses: "
            f"{mitigation_for(step)}. Declare `mitigation:` to confirm or replace it",
        )
    if not step.read_only and not step.compensation_declared:
        _no_compensation(ctx, step, kinds, visit, add)
    _unknown_outcomes(ctx, step, key, add)
    if visit is Decision.COMPENSATE and not step.external_id:
        add(
            Severity.WARNING,
            "SG011",
            f"{step.id}'s compensation ({compensation_text(step)}) must address what {step.id} "
            f"created, but no external_id is declared; persist one (e.g. {step.id}_ref) so "
            "the compensation knows exactly what to undo",
        )
    if step.read_only and step.compensation_declared and not step.irreversible:
        add(
            Severity.INFO,
            "SG013",
            f"{step.id} is read-only (changes: none), so its compensation "
            f"({compensation_text(step)}) never runs; remove it or declare what the step changes",
        )
    return out


def _no_compensation(ctx: Planning, step: Step, kinds: str, visit: Decision, emit: _Add) -> None:
    reverse = " or ".join(_REVERSE_BY_KIND[k] for k in step.changes if k in _REVERSE_BY_KIND)
    suggestion = f"its reverse action ({reverse})" if reverse else "a reverse action"
    pivot = ctx.pivot
    if visit is Decision.KEEP:
        emit(
            Severity.WARNING,
            "SG002",
            f"{step.id} changes {kinds} but declares no compensation: when a later step fails "
            f"and the run rolls back, nothing undoes it. Declare {suggestion}, or "
            f"`compensation: none` with a mitigation such as: {mitigation_for(step)}",
        )
    elif (
        pivot is not None
        and pivot.id == step.id
        and not ctx.process.pivot_declared
        and not ctx.is_last(step)
    ):
        emit(
            Severity.WARNING,
            "SG002",
            f"{step.id} changes {kinds} and declares no compensation, so it became the point of "
            f"no return: every step after it is pushed forward instead of rolled back. Declare "
            f"{suggestion}; or `compensation: none` (and pivot: true) to confirm it",
        )
    else:
        emit(
            Severity.INFO,
            "SG002",
            f"{step.id} changes {kinds} and declares no compensation; no rollback of the engine "
            "reaches it. Declare `compensation: none` to say so, or the compensation a person "
            "would run by hand",
        )


def _unknown_outcomes(ctx: Planning, step: Step, key: str, emit: _Add) -> None:
    if step.read_only or step.idempotent is Idempotency.YES:
        return
    kind = ctx.kind(step)
    who = ctx.who(step)
    if ChangeKind.PAYMENT in step.changes and not step.has_verify:
        lookup = step.external_id or "the idempotency key"
        emit(
            Severity.ERROR,
            "SG003",
            f"{step.id} moves money, is not idempotent (idempotent: {step.idempotent.value}) "
            f"and has no verify: after a timeout nobody can tell whether the money moved, so "
            f"every lost answer becomes a manual case for {who}. Send an idempotency key "
            f"({key}) that the provider honours and set idempotent: yes, or declare verify "
            f"(look the payment up by {lookup}) bound to code",
        )
    elif kind is StepKind.VERIFY_UNBOUND:
        emit(
            Severity.WARNING,
            "SG016",
            f"{step.id}'s verify is only described ({verify_text(step)}): no code is bound, so "
            f"the engine cannot ask, and every timeout or crash of {step.id} goes to {who}. "
            "Bind it: verify: module:function (or @step.verify in a coded saga)",
        )
    elif kind is StepKind.UNVERIFIABLE and not step.required:
        emit(
            Severity.INFO,
            "SG006" if step.idempotent is Idempotency.NO else "SG005",
            f"{step.id} is best-effort with no verify: a timeout leaves it unknown (a "
            f"best_effort_failed alert to {who}, and the run goes on); nobody learns whether it "
            f"took effect. Declare verify (look {step.external_id or key} up in "
            f"{lookup_place(step)}) to know",
        )
    elif kind is StepKind.UNVERIFIABLE and step.idempotent is Idempotency.UNKNOWN:
        emit(
            Severity.WARNING,
            "SG005",
            f"{step.id}: idempotency unknown and no verify, so every timeout or crash of "
            f"{step.id} goes to {who}. Confirm with {provider_of(step)} that a repeat with the "
            f"same key ({key}) has no second effect, then set idempotent: yes; or declare verify",
        )
    elif kind is StepKind.UNVERIFIABLE:
        emit(
            Severity.WARNING,
            "SG006",
            f"{step.id} is not idempotent and has no verify, so every timeout or crash of "
            f"{step.id} goes to {who}. Declare verify (look {step.external_id or key} up in "
            f"{lookup_place(step)}), or make the call idempotent",
        )
    elif step.idempotent is Idempotency.UNKNOWN:
        emit(
            Severity.INFO,
            "SG007",
            f"{step.id}: idempotency unknown; a timeout is verified instead of retried. "
            f"Confirm with {provider_of(step)} whether a repeat with the same key ({key}) is a "
            "no-op: if so, set idempotent: yes and timeouts are retried",
        )


def _process_findings(ctx: Planning) -> list[Finding]:
    process = ctx.process
    out: list[Finding] = []

    def add(code: str, message: str, step: str | None = None, *, error: bool = False) -> None:
        severity = Severity.ERROR if error else Severity.WARNING
        out.append(Finding(severity=severity, step=step, code=code, message=message))

    count = len(ctx.steps)
    if count > MAX_PLANNED_STEPS:
        add(
            "SG004",
            f"{process.name} has {count} steps, more than {MAX_PLANNED_STEPS}: every extra "
            "step is another point of partial failure and another compensation to test. "
            "Split it into sub-processes that each end in a consistent state",
        )
    alerting = Observability.ALERTS in process.observability
    unrouted = [s for s in ctx.steps if not s.read_only and ctx.route(s) is None]
    silent = [s for s in review_steps(ctx) if ctx.route(s) is None] if not alerting else []
    if silent:
        names = [s.id for s in silent]
        add(
            "SG015",
            f"nobody is told when a run of {process.name} waits for a person: "
            f"{few(names)} can end in needs_manual_review, but there is no alert route for "
            f"{'it' if len(silent) == 1 else 'them'} and no alerting. Route them to a team or "
            "channel (alerts.default) and add alerts to observability",
            silent[0].id if len(silent) == 1 else None,
            error=True,
        )
    elif unrouted:
        names = [s.id for s in unrouted]
        money = [s.id for s in unrouted if ChangeKind.PAYMENT in s.changes]
        extra = f" (and alerts.payment for {few(money)})" if money else ""
        add(
            "SG008",
            f"nobody is alerted for {few(names)}: their needs_manual_review, "
            f"compensation_failed and best_effort_failed alerts have no route; add "
            f"alerts.default with a team or channel{extra}",
            unrouted[0].id if len(unrouted) == 1 else None,
        )
    if Observability.DEAD_LETTER_QUEUE not in process.observability:
        add(
            "SG009",
            f"no dead-letter queue: runs of {process.name} that end in "
            f"needs_manual_review{_stuck_examples(ctx)} are visible only in the journal. "
            "Add a dead-letter (review) queue that receives each such run with its "
            "operation_id, step and reason",
        )
    if not alerting:
        routes = sorted(set(process.alerts.values()))
        target = f" to {', '.join(routes)}" if routes else ""
        add(
            "SG010",
            "no alerting: the needs_manual_review, compensation_failed and best_effort_failed "
            f"alerts this plan routes{target} have nothing to fire them. Add alerts on those "
            "events and on runs left running or compensating past their lease",
        )
    return out


def _stuck_examples(ctx: Planning) -> str:
    examples = []
    unknown = riskiest(
        ctx,
        [s for s in ctx.steps if ctx.ruling(s, Situation.TIMEOUT).ends is Decision.MANUAL_REVIEW],
    )
    if unknown is not None:
        examples.append(f"{unknown.id} after a lost answer")
    comp = riskiest(ctx, list(ctx.compensatable_before_pivot()))
    if comp is not None:
        examples.append(f"{comp.id} after a failed compensation")
    forward = next(
        (s for s in ctx.steps if s.required and ctx.give_up(s) is Decision.MANUAL_REVIEW), None
    )
    if forward is not None:
        examples.append(f"{forward.id} failing after the pivot")
    return f" ({'; '.join(examples)})" if examples else ""
