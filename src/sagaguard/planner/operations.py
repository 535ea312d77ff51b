"""The operations half of the checklist: who is told, where cases wait, and the runbooks.

Every case that can end with a person gets a runbook item: who works it (a route, or the
review queue when none is declared: never a hint to add one), where they look, and the
``sagaguard`` commands to run, given as commands (``commands``) so a page can show them
as code and a person can copy them as they are.
"""

from __future__ import annotations

from typing import NamedTuple

from sagaguard.model import Observability, Phase, Step
from sagaguard.planner.context import Planning
from sagaguard.planner.findings import review_steps
from sagaguard.planner.profiles import lookup_place
from sagaguard.planner.reasons import give_up_phrase
from sagaguard.planner.wording import few, mitigation_for
from sagaguard.rules import Decision, Situation

__all__ = ["Item", "operations_items"]


class Item(NamedTuple):
    """A checklist item before it is numbered."""

    title: str
    detail: str
    steps: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()


def operations_items(ctx: Planning) -> list[Item]:
    """Operations items, in reading order."""
    process = ctx.process
    effects = [s for s in ctx.steps if not s.read_only]
    routes = "; ".join(f"{s.id} -> {ctx.who(s)}" for s in effects[:8]) or "no step alerts"
    if len(effects) > 8:
        routes += f"; and {len(effects) - 8} more"
    items = [
        Item(
            "Route needs_manual_review, compensation_failed and best_effort_failed alerts",
            f"By step: {routes}",
            steps=tuple(s.id for s in effects if ctx.route(s) is None),
        )
    ]
    observed = set(process.observability)
    if Observability.ALERTS in observed:
        items.append(
            Item(
                "Alert on stuck and failed runs",
                f"Fire on every {process.name} run entering needs_manual_review, every "
                "compensation_failed and best_effort_failed alert, and any run running or "
                "compensating past its lease plus one recovery interval",
            )
        )
    else:
        items.append(
            Item(
                "Add alerting (none exists today)",
                f"Without alerts, a run of {process.name} stuck in needs_manual_review waits "
                "unseen. Alert on that status, on every compensation_failed event, and on runs "
                "running or compensating past their lease plus one recovery interval",
            )
        )
    if Observability.DEAD_LETTER_QUEUE in observed:
        items.append(
            Item(
                "Send runs needing review to the dead-letter queue",
                f"Each {process.name} run in needs_manual_review lands there with operation_id, "
                "the step, its status, reason and external ids, and leaves only when a person "
                "resolves the run",
            )
        )
    else:
        items.append(
            Item(
                "Add a dead-letter (review) queue",
                f"Runs of {process.name} that end in needs_manual_review must land in a queue a "
                "person works through: operation_id, step, reason, external ids, age",
            )
        )
    for step in review_steps(ctx):
        items.append(_runbook(ctx, step))
    best_effort = [s for s in effects if not s.required]
    if best_effort:
        items.append(_best_effort(ctx, best_effort))
    for step in effects:
        if ctx.irreversible(step):
            items.append(_mitigation(ctx, step))
    items += _observability(ctx)
    return items


def _runbook(ctx: Planning, step: Step) -> Item:
    who = ctx.who(step)
    when = _when_reviewed(ctx, step)
    result = (
        f' --result \'{{"{step.external_id}": "..."}}\'' if step.external_id else " --result '{}'"
    )
    resolve = f"sagaguard review resolve OPERATION_ID --step {step.id}"
    commands = [
        "sagaguard review list",
        "sagaguard runs show OPERATION_ID",
        f"{resolve} --as completed{result} --by NAME --note 'what you found'",
        f"{resolve} --as not_applied --by NAME --note 'what you found'",
    ]
    undoable = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
    following = ctx.steps[ctx.index(step) + 1] if not ctx.is_last(step) else None
    goes_on = f"the run continues with {following.id}" if following else "the run completes"
    with_id = f" with its {step.external_id}" if step.external_id else ""
    outcomes = [
        f"took effect: `--as completed`{with_id}, and {goes_on}",
        f"did not: `--as not_applied`, and {step.id} is called again if its bound allows, "
        f"else {give_up_phrase(ctx, step)}",
    ]
    if undoable or ctx.phase(step) is not Phase.AFTER_PIVOT:
        commands.append(f"{resolve} --as compensated --by NAME --note 'what you undid'")
        outcomes.append(
            "took effect and you undid it by hand: `--as compensated`, and the rollback goes on "
            "with the steps before it"
        )
    return Item(
        f"Write the manual-review runbook for {step.id}",
        f"{when}, {who} looks the idempotency key {{operation_id}}:{step.id} up in "
        f"{lookup_place(step)}, then resolves it: " + "; ".join(outcomes),
        steps=(step.id,),
        commands=tuple(commands),
    )


def _when_reviewed(ctx: Planning, step: Step) -> str:
    ruling = ctx.ruling(step, Situation.TIMEOUT)
    reasons = []
    if ruling.ends is Decision.MANUAL_REVIEW:
        if ruling.decision is Decision.RETRY:
            reasons.append(f"none of {step.id}'s retries with the same key got an answer")
        elif ruling.decision is Decision.VERIFY:
            reasons.append(f"verify cannot tell {step.id}'s outcome")
        else:
            reasons.append(f"{step.id}'s outcome is unknown")
    if step.required and ctx.phase(step) is Phase.AFTER_PIVOT:
        reasons.append(f"{step.id} kept failing after the pivot for its retry window")
    if ctx.ruling(step, Situation.COMPENSATION_FAILED).ends is Decision.MANUAL_REVIEW:
        reasons.append(f"undoing {step.id} failed")
    return "When " + " or ".join(reasons) if reasons else f"When {step.id} waits for review"


def _best_effort(ctx: Planning, steps: list[Step]) -> Item:
    names = few([s.id for s in steps[:4]], len(steps))
    routes = "; ".join(f"{s.id} -> {ctx.who(s)}" for s in steps[:4])
    return Item(
        f"Work the best_effort_failed alerts of {names}",
        f"A best-effort step that fails for good (or whose outcome stays unknown) ends failed or "
        f"unknown while the run completes without it; nothing is rolled back. Someone must "
        f"finish it by hand: {routes}. Find them with the commands below",
        steps=tuple(s.id for s in steps),
        commands=("sagaguard runs list --status completed", "sagaguard runs show OPERATION_ID"),
    )


def _mitigation(ctx: Planning, step: Step) -> Item:
    who = ctx.who(step)
    kept = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.KEEP
    if kept:
        when = f"{step.id} cannot be undone; when a rollback passes it, {who} does this"
    else:
        when = (
            f"{step.id} cannot be undone and no rollback of the engine reaches it; if a "
            f"completed {ctx.process.name} run is undone later by other means, {who} does this"
        )
    return Item(f"Own the mitigation of {step.id}", f"{when}: {mitigation_for(step)}", (step.id,))


def _observability(ctx: Planning) -> list[Item]:
    process = ctx.process
    observed = set(process.observability)
    items = []
    if Observability.METRICS in observed:
        items.append(
            Item(
                "Chart runs and steps by status",
                f"Counts of {process.name} runs by status and steps by status, retries and "
                "compensations per step, best-effort failures, and the age of the oldest run "
                "in needs_manual_review",
            )
        )
    else:
        items.append(
            Item(
                "Add metrics",
                f"Count {process.name} runs by status, retries and compensations per step, and "
                "track the age of the oldest run in needs_manual_review",
            )
        )
    ids = [s.external_id for s in ctx.steps if s.external_id]
    fields = "operation_id, step_id, attempt, status" + (
        f" and the step's external id ({few(ids[:4], len(ids))})" if ids else ""
    )
    if Observability.TRACES in observed:
        detail = (
            f"Put {fields} on every log line and as span attributes of each {process.name} "
            "step's span"
        )
    elif Observability.LOGS in observed:
        detail = f"Put {fields} on every log line, so one grep tells a {process.name} run's story"
    else:
        detail = f"Add structured logs carrying {fields} for every {process.name} transition"
    items.append(Item("Make one run traceable end to end", detail))
    return items
