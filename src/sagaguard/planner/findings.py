"""Part 7 of the plan: findings, the problems of the process design itself.

Codes are stable (documented in ``docs/plan-json.md``); a new check gets a new code:

    SG001 warning  pivot ordering: an irreversible step (`compensation: none`, or none declared)
                   is followed by a step that can still fail
    SG002 warning  a side-effecting step declares no compensation (info when it is the last step)
    SG003 error    a payment step is neither idempotent nor verifiable
    SG004 warning  more than 20 steps
    SG005 warning  idempotency unknown and no verify
    SG006 warning  not idempotent and no verify
    SG007 info     idempotency unknown, covered by verify: confirm with the provider
    SG008 warning  no alert route for steps that can raise an alert
    SG009 warning  no dead-letter queue among the observability
    SG010 warning  no alerting among the observability
    SG011 warning  a compensatable step persists no external id
    SG012 info     an irreversible step declares no mitigation (the plan derives one)
    SG013 info     a read-only step declares a compensation, which never runs
"""

from __future__ import annotations

from sagaguard.model import (
    MAX_PLANNED_STEPS,
    ChangeKind,
    Idempotency,
    Observability,
    Process,
    Step,
    StepClass,
)
from sagaguard.planner.plan import Finding, Severity
from sagaguard.planner.wording import (
    can_still_fail,
    compensation_text,
    mitigation_for,
    riskiest,
    side_effecting,
)

__all__ = ["FINDING_CODES", "build_findings"]

FINDING_CODES = {
    "SG001": (
        "pivot ordering: an irreversible step (compensation none or not declared) is followed "
        "by a step that can still fail"
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
    "SG011": "a compensatable step persists no external id",
    "SG012": "an irreversible step declares no mitigation",
    "SG013": "a read-only step declares a compensation",
}

_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

_PROVIDER_BY_KIND = {
    ChangeKind.PAYMENT: "the payment provider",
    ChangeKind.EXTERNAL_API: "the API's owner",
    ChangeKind.EMAIL: "the email provider",
    ChangeKind.QUEUE: "the broker (deduplication by message id)",
    ChangeKind.RESERVATION: "the reservation service",
    ChangeKind.DATABASE: "the owners of the table it writes",
    ChangeKind.NONE: "the data source",
}

_LOOKUP_BY_KIND = {
    ChangeKind.PAYMENT: "the payment provider's dashboard",
    ChangeKind.EXTERNAL_API: "the API it called",
    ChangeKind.EMAIL: "the email provider's message log",
    ChangeKind.QUEUE: "the broker and its consumers",
    ChangeKind.RESERVATION: "the reservation service",
    ChangeKind.DATABASE: "the database",
    ChangeKind.NONE: "the data source",
}

_REVERSE_BY_KIND = {
    ChangeKind.DATABASE: "void the row it wrote",
    ChangeKind.EXTERNAL_API: "cancel what it created",
    ChangeKind.QUEUE: "publish a cancelling message",
    ChangeKind.PAYMENT: "refund the charge",
    ChangeKind.RESERVATION: "release the reservation",
}


def build_findings(process: Process) -> tuple[Finding, ...]:
    """Every finding of the process, errors first, then in step order."""
    found: list[tuple[int, Finding]] = []
    for index, step in enumerate(process.steps):
        found += [(index, f) for f in _step_findings(process, index, step)]
    found += [(len(process.steps), f) for f in _process_findings(process)]
    found.sort(key=lambda pair: (_SEVERITY_RANK[pair[1].severity], pair[0], pair[1].code))
    return tuple(f for _, f in found)


def provider_of(step: Step) -> str:
    """Who can say whether a repeated call of ``step`` is a no-op."""
    return _PROVIDER_BY_KIND[step.changes[0]]


def lookup_place(step: Step) -> str:
    """Where a person looks up whether ``step`` took effect."""
    return _LOOKUP_BY_KIND[step.changes[0]]


def _step_findings(process: Process, index: int, step: Step) -> list[Finding]:
    out: list[Finding] = []

    def add(severity: Severity, code: str, message: str) -> None:
        out.append(Finding(severity=severity, step=step.id, code=code, message=message))

    later = process.steps[index + 1 :]
    kinds = ", ".join(k.value for k in step.changes)
    key = f"{{operation_id}}:{step.id}"
    failing = [s for s in later if can_still_fail(s)]
    if step.step_class is StepClass.IRREVERSIBLE and side_effecting(step) and failing:
        last, names = failing[-1], ", ".join(s.id for s in failing)
        if step.compensation_declared:
            what = f"{step.id} is irreversible ({kinds})"
            fix = ""
        else:
            # Irreversible by class: nothing undoes it until a compensation is declared, and
            # SG002 already says how to declare one.
            what = f"{step.id} declares no compensation, so it cannot be undone ({kinds})"
            fix = ", or give it a compensation (SG002)"
        add(
            Severity.WARNING,
            "SG001",
            f"{what} but {names} can still fail after it; a rollback then leaves "
            f"{step.id}'s effect in place for an operation that was undone. Move {step.id} "
            f"after {last.id}, the last step that can fail{fix}",
        )
    if step.irreversible and not step.read_only and not step.mitigation:
        add(
            Severity.INFO,
            "SG012",
            f"{step.id} is irreversible and declares no mitigation; the plan uses: "
            f"{mitigation_for(step)}. Declare `mitigation:` to confirm or replace it",
        )
    if side_effecting(step) and not step.compensation_declared:
        reverse = " or ".join(_REVERSE_BY_KIND[k] for k in step.changes if k in _REVERSE_BY_KIND)
        suggestion = f"its reverse action ({reverse})" if reverse else "a reverse action"
        if later:
            add(
                Severity.WARNING,
                "SG002",
                f"{step.id} changes {kinds} but declares no compensation: when "
                f"{_later_phrase(later)} fails, nothing undoes it. Declare {suggestion}, or "
                f"`compensation: none` with a mitigation such as: {mitigation_for(step)}",
            )
        else:
            add(
                Severity.INFO,
                "SG002",
                f"{step.id} changes {kinds} and declares no compensation; it is the last "
                "step, so nothing after it can fail and it is never compensated. Declare "
                "`compensation: none` to say so",
            )
    unsafe = side_effecting(step) and step.idempotent is not Idempotency.YES
    if unsafe and ChangeKind.PAYMENT in step.changes and not step.has_verify:
        lookup = step.external_id or "the idempotency key"
        who = process.alert_route(step) or "a person (no alert route yet)"
        add(
            Severity.ERROR,
            "SG003",
            f"{step.id} moves money, is not idempotent (idempotent: "
            f"{step.idempotent.value}) and has no verify: after a timeout nobody can tell "
            f"whether the money moved, so every lost answer becomes a manual case for {who}. "
            f"Send an idempotency key ({key}) that the provider honours and set idempotent: "
            f"yes, or declare verify (look the payment up by {lookup})",
        )
    elif unsafe and not step.has_verify and step.idempotent is Idempotency.UNKNOWN:
        add(
            Severity.WARNING,
            "SG005",
            f"{step.id}: idempotency unknown and no verify, so every timeout or crash of "
            f"{step.id} goes to a person. Confirm with {provider_of(step)} that a repeat "
            f"with the same key ({key}) has no second effect, then set idempotent: yes; "
            "or declare verify",
        )
    elif unsafe and not step.has_verify:
        add(
            Severity.WARNING,
            "SG006",
            f"{step.id} is not idempotent and has no verify, so every timeout or crash of "
            f"{step.id} goes to a person. Declare verify (look {step.external_id or key} up "
            f"in {lookup_place(step)}), or make the call idempotent",
        )
    elif unsafe and step.idempotent is Idempotency.UNKNOWN:
        add(
            Severity.INFO,
            "SG007",
            f"{step.id}: idempotency unknown; a timeout is verified instead of retried. "
            f"Confirm with {provider_of(step)} whether a repeat with "
            f"the same key ({key}) is a no-op: if so, set idempotent: yes and timeouts are "
            "retried",
        )
    # The last step is never compensated (nothing after it can fail), so nothing to address.
    if step.step_class is StepClass.COMPENSATABLE and not step.external_id and later:
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


def _process_findings(process: Process) -> list[Finding]:
    out: list[Finding] = []

    def add(code: str, message: str, step: str | None = None) -> None:
        out.append(Finding(severity=Severity.WARNING, step=step, code=code, message=message))

    count = len(process.steps)
    if count > MAX_PLANNED_STEPS:
        add(
            "SG004",
            f"{process.name} has {count} steps, more than {MAX_PLANNED_STEPS}: every extra "
            "step is another point of partial failure and another compensation to test. "
            "Split it into sub-processes that each end in a consistent state",
        )
    unrouted = [s for s in process.steps if side_effecting(s) and process.alert_route(s) is None]
    if unrouted:
        names = ", ".join(s.id for s in unrouted)
        money = [s.id for s in unrouted if ChangeKind.PAYMENT in s.changes]
        extra = f" (and alerts.payment for {', '.join(money)})" if money else ""
        add(
            "SG008",
            f"nobody is alerted for {names}: their needs_manual_review and "
            f"compensation_failed alerts have no route; add alerts.default{extra}",
            unrouted[0].id if len(unrouted) == 1 else None,
        )
    if Observability.DEAD_LETTER_QUEUE not in process.observability:
        add(
            "SG009",
            f"no dead-letter queue: runs of {process.name} that end in "
            f"needs_manual_review{_stuck_examples(process)} are visible only in the journal. "
            "Add a dead-letter (review) queue that receives each such run with its "
            "operation_id, step and reason",
        )
    if Observability.ALERTS not in process.observability:
        routes = sorted(set(process.alerts.values()))
        target = f" to {', '.join(routes)}" if routes else ""
        add(
            "SG010",
            "no alerting: the needs_manual_review and compensation_failed alerts this plan "
            f"routes{target} have nothing to fire them. Add alerts on both events and on "
            "runs left running or compensating past their lease",
        )
    return out


def _stuck_examples(process: Process) -> str:
    examples = []
    unknown = riskiest([s for s in process.steps if side_effecting(s) and not s.safe_to_repeat])
    if unknown is not None:
        examples.append(f"{unknown.id} after a lost answer")
    # The last step is never compensated, so its compensation cannot strand a run.
    comp = riskiest([s for s in process.steps[:-1] if s.step_class is StepClass.COMPENSATABLE])
    if comp is not None:
        examples.append(f"{comp.id} after a failed compensation")
    return f" ({'; '.join(examples)})" if examples else ""


def _later_phrase(later: tuple[Step, ...]) -> str:
    if len(later) == 1:
        return later[0].id
    return f"{later[0].id} or a step after it"
