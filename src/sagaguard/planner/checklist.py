"""Part 6 of the plan: the production-readiness checklist, tailored to the process.

Each item names the steps, ids, store and routes it is about. Engineering items come first
(ids ``E1``...), then operations (``O1``..., :mod:`.operations`). There are always at least
eight, in both areas.
"""

from __future__ import annotations

import math

from sagaguard.model import Idempotency, StateStore, Step
from sagaguard.planner.context import Planning
from sagaguard.planner.impact import riskiest
from sagaguard.planner.operations import Item, operations_items
from sagaguard.planner.plan import Area, ChecklistItem, Finding
from sagaguard.planner.profiles import lookup_place, provider_of
from sagaguard.planner.scenarios import compensation_failure_target, unknown_outcome_target
from sagaguard.planner.wording import (
    bound_text,
    compensation_text,
    few,
    fmt_seconds,
    plural,
    single_owner_mechanism,
)
from sagaguard.rules import Decision, Situation, StepKind

__all__ = ["build_checklist", "key_retention", "retry_window"]

_UNIQUE_RUN_BY_STORE = {
    StateStore.DATABASE: "a unique index on the runs table's operation_id column",
    StateStore.KEY_VALUE: "creating the run key with SET run:{process}:{operation_id} ... NX",
    StateStore.JOBS_TABLE: "a unique constraint on the jobs table's operation_id column",
    StateStore.EVENT_LOG: (
        "one stream per operation_id whose first event is appended with expected version "
        "'no stream'"
    ),
    StateStore.STATE_MACHINE: "using operation_id as the execution name, which cannot start twice",
}


def build_checklist(ctx: Planning, findings: tuple[Finding, ...]) -> tuple[ChecklistItem, ...]:
    """Engineering items, then operations items, numbered within their area."""
    ids = {s.id for s in ctx.steps}
    items = [
        _item(f"E{n}", Area.ENGINEERING, item, ids)
        for n, item in enumerate(_engineering(ctx, findings), start=1)
    ]
    items += [
        _item(f"O{n}", Area.OPERATIONS, item, ids)
        for n, item in enumerate(operations_items(ctx), start=1)
    ]
    return tuple(items)


def _item(item_id: str, area: Area, item: Item, ids: set[str]) -> ChecklistItem:
    return ChecklistItem(
        id=item_id,
        area=area,
        title=item.title,
        detail=_cap(item.detail, ids),
        commands=item.commands,
        steps=item.steps,
    )


def _cap(text: str, ids: set[str]) -> str:
    # A step id keeps its spelling even where it opens a sentence: it is a name to grep for.
    first = text.split(" ", 1)[0]
    if first.rstrip(",:;") in ids or first.removesuffix("'s") in ids:
        return text
    return text[:1].upper() + text[1:]


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def _ids(steps: list[Step] | tuple[Step, ...]) -> tuple[str, ...]:
    return tuple(s.id for s in steps)


def retry_window(ctx: Planning, step: Step) -> float:
    """The longest time from a step's first attempt to the end of its last.

    Every attempt may run to its timeout, with the exponential backoff between attempts
    (``backoff_base`` doubling, capped at ``backoff_max``; jitter only shortens it); after
    the pivot a required step is retried for its whole ``retry_for`` window.
    """
    process = ctx.process
    defaults = process.defaults
    attempts = process.max_attempts_for(step)
    waits = sum(
        min(defaults.backoff_max, defaults.backoff_base * 2 ** (n - 1)) for n in range(1, attempts)
    )
    window: float = attempts * process.timeout_for(step) + waits
    bound = ctx.ruling(step, Situation.DEFINITE_FAILURE).bound
    if bound is not None and bound.window_s is not None:
        window = max(window, bound.window_s + process.timeout_for(step))
    return window


def key_retention(ctx: Planning, step: Step) -> float:
    """How long the provider must keep ``step``'s idempotency key: its retry window plus the
    process's ``resubmission_window`` (a client may resend the operation_id that long)."""
    return retry_window(ctx, step) + ctx.process.resubmission_window


def span(seconds: float) -> str:
    """``86430.6`` -> ``24h 1m``: a retention period, rounded up to the minute."""
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(
        part for part in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if part
    )


def _engineering(ctx: Planning, findings: tuple[Finding, ...]) -> list[Item]:
    process = ctx.process
    store = process.state_store.value
    steps = list(ctx.steps)
    effects = [s for s in steps if not s.read_only]
    with_ids = [s for s in steps if s.external_id]
    ids = few([f"{s.external_id} ({s.id})" for s in with_ids[:4]], len(with_ids)) or "none"
    items: list[Item] = [
        Item(
            f"Journal every step in the {store} store before moving on",
            f"Per run: operation_id, status, owner, lease expiry, fencing token. Per step, all "
            f"{len(steps)} of them: step_id, status, attempts, last_attempt_at, reason and its "
            f"external id ({ids}). Commit `started` before each call and the result before the "
            f"next step starts, so a crash after {steps[0].id} or any later step loses nothing",
        ),
        Item(
            "Make operation_id unique",
            f"Enforce it by {_UNIQUE_RUN_BY_STORE[process.state_store]}".replace(
                "{process}", process.name
            )
            + f"; a second {process.name} request with the same operation_id returns the "
            "existing run, and one with a different input is a conflict",
        ),
        Item(
            f"Give each {process.name} run a single rollback owner in the {store} store",
            single_owner_mechanism(process.state_store, process.name)
            + "; a worker whose lease expired stops before its next write",
        ),
        _pivot_item(ctx, findings),
    ]
    keyed = [s for s in effects if s.idempotent is Idempotency.YES]
    if keyed:
        items.append(
            Item(
                "Send the idempotency key on every idempotent call",
                "Pass {operation_id}:{step_id} unchanged on every attempt of "
                + few([s.id for s in keyed[:4]], len(keyed))
                + "; a new key per attempt would turn each retry into a second effect. Keys "
                f"must outlive the {span(process.resubmission_window)} resubmission window",
                steps=_ids(keyed),
            )
        )
    for step in effects:
        if step.idempotent is Idempotency.UNKNOWN:
            items.append(_confirm_idempotency(ctx, step))
    unbound = [s for s in effects if ctx.kind(s) is StepKind.VERIFY_UNBOUND]
    if unbound:
        items.append(
            Item(
                "Bind verify code to " + few([s.id for s in unbound[:4]], len(unbound)),
                "Their verify is only described, so the engine cannot ask the other side and "
                "sends every lost answer to a person. Bind each: "
                + "; ".join(
                    f"{s.id}: verify: module:function that does '{_words(s.verify)}'"
                    for s in unbound[:4]
                ),
                steps=_ids(unbound),
            )
        )
    blind = [s for s in effects if ctx.kind(s) is StepKind.UNVERIFIABLE]
    if blind:
        items.append(
            Item(
                "Add a verify to " + few([s.id for s in blind[:4]], len(blind)),
                "Without a way to read the real outcome, every timeout or crash of these waits "
                "for a person (or, best-effort, stays unknown). Declare verify: "
                + "; ".join(
                    f"for {s.id}, look {s.external_id or '{operation_id}:' + s.id} up in "
                    f"{lookup_place(s)}"
                    for s in blind[:4]
                ),
                steps=_ids(blind),
            )
        )
    undoable = list(ctx.compensatable_before_pivot())
    if undoable:
        items.append(
            Item(
                "Test every compensation the engine runs against a sandbox, twice",
                "Run "
                + "; ".join(f"{s.id}: {compensation_text(s)}" for s in undoable[:4])
                + (f"; and {len(undoable) - 4} more" if len(undoable) > 4 else "")
                + ". The second run must change nothing: a compensation can be repeated after "
                "a crash",
                steps=_ids(undoable),
            )
        )
    items.append(_bounds_item(ctx))
    target = unknown_outcome_target(ctx)
    victim = compensation_failure_target(ctx)
    tail = f", compensation failure of {victim.id}" if victim else ""
    items.append(
        Item(
            "Run the partial-failure tests of this plan in CI",
            f"Failure after each of the {len(steps)} steps, crash before persist and timeout "
            f"of {target.id}, retry after partial success, two workers on one "
            f"operation_id{tail}; each asserts the final state of every step, the call counts "
            "and the alerts listed with it",
        )
    )
    return items


def _pivot_item(ctx: Planning, findings: tuple[Finding, ...]) -> Item:
    pivot = ctx.pivot
    ordering = [f for f in findings if f.code in ("SG001", "SG014")]
    fix = ""
    if ordering:
        fix = (
            "; first resolve "
            + ", ".join(f"{f.code} on {f.step}" if f.step else f.code for f in ordering[:4])
            + " (findings)"
        )
    if pivot is None:
        return Item(
            "Name the point of no return",
            "Every step of this process can be undone, so every failure rolls back. If one "
            "step commits the process for good (a transfer, a shipment, a ticket), declare "
            f"pivot: true on it so a failure after it is pushed forward instead{fix}",
        )
    if ctx.process.pivot_declared:
        return Item(
            f"Keep {pivot.id} the point of no return",
            f"Everything before {pivot.id} must stay compensatable and everything after it "
            f"retriable (idempotent or verifiable): a failure after it is pushed forward, "
            f"never rolled back{fix}",
            steps=(pivot.id,),
        )
    return Item(
        f"Confirm {pivot.id} as the point of no return",
        f"The plan derives the pivot: {pivot.id} is the first required step that cannot be "
        f"undone. Declare pivot: true on it (or on the step that really is the point of no "
        f"return), so a later edit of the spec cannot move it silently{fix}",
        steps=(pivot.id,),
    )


def _bounds_item(ctx: Planning) -> Item:
    process = ctx.process
    shown = list(ctx.steps[:6])
    limits = ", ".join(
        f"{s.id} {bound_text(ctx.ruling(s, Situation.DEFINITE_FAILURE).bound)} of "
        f"{fmt_seconds(process.timeout_for(s))}"
        for s in shown
    )
    if len(ctx.steps) > len(shown):
        limits += f", and {plural(len(ctx.steps) - len(shown), 'more step')}"
    defaults = process.defaults
    comp = riskiest(ctx, list(ctx.compensatable_before_pivot()))
    compensations = ""
    if comp is not None:
        bound = ctx.ruling(comp, Situation.COMPENSATION_FAILED).bound
        compensations = f"; compensations are retried {bound_text(bound)}"
    return Item(
        "Bound every retry and persist the attempt count",
        f"Per step: {limits}{compensations}; backoff {fmt_seconds(defaults.backoff_base)} "
        f"doubling to at most {fmt_seconds(defaults.backoff_max)} with jitter. The counts "
        "live in the journal, so a restart does not reset them",
    )


def _confirm_idempotency(ctx: Planning, step: Step) -> Item:
    ruling = ctx.ruling(step, Situation.TIMEOUT)
    now = {
        Decision.VERIFY: "verified",
        Decision.CONTINUE: "left unknown (best-effort)",
    }.get(ruling.decision, "sent to a person")
    window = retry_window(ctx, step)
    resubmit = ctx.process.resubmission_window
    return Item(
        f"Confirm with {provider_of(step)} whether {step.id} is idempotent",
        f"Ask whether a second request with the same idempotency key "
        f"({{operation_id}}:{step.id}) returns the first result without a second "
        f"{'/'.join(k.value for k in step.changes)} effect, and whether keys are kept at least "
        f"{span(window + resubmit)}: {step.id}'s whole retry window ({fmt_seconds(window)}) "
        f"plus the {span(resubmit)} in which a {ctx.process.name} client may send the same "
        f"operation_id again (resubmission_window). If both hold, set idempotent: yes. Until "
        f"then a timeout of {step.id} is {now}",
        steps=(step.id,),
    )
