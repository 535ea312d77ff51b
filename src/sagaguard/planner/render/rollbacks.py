"""The rollback part of a rendered plan: the chain indexed once, and each rollback in words.

A rollback sequence points into the plan's one ``rollback_chain``; :class:`Rollbacks` indexes
the chain and the steps once, so every sequence, policy and test of a rendered plan reads its
part of the chain in time bounded by :data:`~.labels.LIST_LIMIT`, not by the process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.model import StepClass
from sagaguard.planner.plan import ChainLink, Plan, RollbackSequence, RunStatus, StepEntry
from sagaguard.planner.render.labels import LIST_LIMIT, bound_label, duration
from sagaguard.planner.wording import join, plural
from sagaguard.rules import Decision

__all__ = ["Rollbacks", "more", "policy_intro", "procedure", "rollback_intro", "steps_by_id"]


def steps_by_id(plan: Plan) -> dict[str, StepEntry]:
    """The step table by step id."""
    return {s.id: s for s in plan.steps}


@dataclass(frozen=True, slots=True)
class Rollbacks:
    """The plan's rollback chain, indexed once, so each sequence reads its part in O(1)."""

    plan: Plan
    by_id: dict[str, StepEntry]
    chain_at: dict[str, int]
    ids: list[str]
    at: dict[str, int]
    """0-based position of each step."""
    read_only_prefix: list[int]
    """How many read-only steps come before each position (and one past the last)."""

    @classmethod
    def of(cls, plan: Plan) -> Rollbacks:
        """Index ``plan``'s steps and rollback chain."""
        prefix = [0]
        for step in plan.steps:
            prefix.append(prefix[-1] + (step.step_class is StepClass.READ_ONLY))
        return cls(
            plan=plan,
            by_id=steps_by_id(plan),
            chain_at={link.step: i for i, link in enumerate(plan.rollback_chain)},
            ids=[s.id for s in plan.steps],
            at={s.id: i for i, s in enumerate(plan.steps)},
            read_only_prefix=prefix,
        )

    def read_only(self, position: int) -> bool:
        """True when the step at ``position`` changes nothing."""
        return self.read_only_prefix[position + 1] > self.read_only_prefix[position]

    def read_only_between(self, first: int, last: int) -> int:
        """How many read-only steps lie between ``first`` and ``last`` (inclusive)."""
        return self.read_only_prefix[last + 1] - self.read_only_prefix[first]

    def links(self, seq: RollbackSequence, limit: int = LIST_LIMIT) -> tuple[ChainLink, ...]:
        """The first ``limit`` links the rollback of ``seq`` visits, latest first."""
        if seq.rollback_from is None:
            return ()
        start = self.chain_at[seq.rollback_from]
        return self.plan.rollback_chain[start : start + limit]

    def compensated(self, seq: RollbackSequence, limit: int = LIST_LIMIT) -> list[str]:
        """The first ``limit`` steps the rollback of ``seq`` compensates, latest first."""
        return self._visited(seq.rollback_from, Decision.COMPENSATE, limit)

    def kept(self, seq: RollbackSequence, limit: int = LIST_LIMIT) -> list[str]:
        """The first ``limit`` steps the rollback of ``seq`` keeps, latest first."""
        return self._visited(seq.rollback_from, Decision.KEEP, limit)

    def _visited(self, start: str | None, decision: Decision, limit: int) -> list[str]:
        found: list[str] = []
        if start is None:
            return found
        for link in self.plan.rollback_chain[self.chain_at[start] :]:
            if len(found) >= limit:
                break
            if link.decision is decision:
                found.append(link.step)
        return found

    def halted(self, step_id: str, limit: int = LIST_LIMIT) -> list[str]:
        """The compensated steps of the chain after ``step_id``: left completed if it fails."""
        after = self.chain_at[step_id] + 1
        if after >= len(self.plan.rollback_chain):
            return []
        return self._visited(self.plan.rollback_chain[after].step, Decision.COMPENSATE, limit)


def procedure(plan: Plan, seq: RollbackSequence, rollbacks: Rollbacks | None = None) -> list[str]:
    """The recovery after ``seq.failed_step`` failed for good, as numbered lines.

    ``rollbacks`` is :meth:`Rollbacks.of` the plan, when the caller renders many sequences.
    """
    rollbacks = rollbacks if rollbacks is not None else Rollbacks.of(plan)
    failed = rollbacks.by_id[seq.failed_step]
    if seq.recovery is Decision.MANUAL_REVIEW:
        return [
            f"{failed.id} failed for good after the pivot: nothing before it is compensated",
            f"retry {failed.id} with the same idempotency key for "
            f"{_window(failed)} (at least {plural(failed.max_attempts, 'attempt')})",
            f"still failing: mark it needs_manual_review and alert {failed.alert_to}",
        ]
    if seq.recovery is Decision.CONTINUE:
        following = plan.steps[failed.position] if failed.position < len(plan.steps) else None
        goes_on = f"the run goes on with {following.id}" if following else "the run completes"
        return [
            f"{failed.id} is best-effort: mark it failed; nothing is compensated",
            f"send a best_effort_failed alert to {failed.alert_to}",
            goes_on,
        ]
    # Only the first few links are named, so the lines of every sequence together grow
    # linearly with the process.
    shown = rollbacks.links(seq)
    if not shown:
        return [
            f"{failed.id} failed for good",
            f"nothing before {failed.id} changed anything: mark the run failed",
        ]
    lines = [
        f"{failed.id} failed for good: mark the run compensating (one owner, holding the lease)"
    ]
    for link in shown:
        if link.decision is Decision.COMPENSATE:
            lines.append(f"compensate {link.step}: {link.instruction}")
        else:
            lines.append(f"{link.step} cannot be undone: keep it; {link.instruction}")
    more = seq.compensate_count + seq.keep_count - len(shown)
    last = plan.rollback_chain[-1].step
    if more:
        lines.append(
            f"the {more} steps before {shown[-1].step} the same way, latest first, down to {last}"
        )
    if seq.compensate_count:
        first_undone = next(
            link.step
            for link in reversed(plan.rollback_chain)
            if link.decision is Decision.COMPENSATE
        )
        lines.append(f"mark the run compensated once {first_undone} is undone")
    else:
        lines.append(
            f"mark the run compensated: {join([link.step for link in shown])} kept with a "
            "mitigation"
        )
    return lines


def _window(step: StepEntry) -> str:
    return duration(step.retry_for_s) if step.retry_for_s else "its retry window"


def rollback_intro(plan: Plan) -> str:
    """How this process recovers, shown on its longest rollback and its forward steps."""
    name = plan.process.name
    sequences = plan.rollback_sequences
    rolling = [s for s in sequences if s.recovery is Decision.ROLLBACK]
    parts = []
    longest = max(reversed(rolling), key=lambda s: s.compensate_count + s.keep_count, default=None)
    pivot = plan.pivot.step if plan.pivot else None
    rollbacks = Rollbacks.of(plan)
    if longest is not None and (longest.compensate_count or longest.keep_count):
        where = f"Up to the point of no return ({pivot}), recovery" if pivot else "Recovery"
        undone = rollbacks.compensated(longest)
        kept = rollbacks.kept(longest)
        keeps = (
            f"keeps {join(kept)}{more(longest.keep_count - len(kept))} (cannot be undone) "
            "with a mitigation"
        )
        if undone:
            first, *rest = undone
            then = f", then {join(rest)}" if rest else ""
            then += more(longest.compensate_count - len(undone))
            text = (
                f"{where} runs backward from the step that failed: when "
                f"{longest.failed_step} fails, the rollback undoes {first} first{then}"
            )
            if kept:
                text += f", and {keeps}"
        else:
            text = (
                f"{where} cannot undo anything: when {longest.failed_step} fails, the "
                f"rollback {keeps}"
            )
        parts.append(text)
    elif not any(s.recovery is not Decision.ROLLBACK for s in sequences):
        parts.append(f"No step of {name} changes anything, so a failed run has nothing to undo")
    forward = [s for s in sequences if s.recovery is Decision.MANUAL_REVIEW]
    if forward:
        forward_ids = [s.failed_step for s in forward[:LIST_LIMIT]]
        left = len(forward) - len(forward_ids)
        one = len(forward) == 1
        parts.append(
            f"After {pivot}, a failure is pushed forward, never rolled back: "
            f"{join(forward_ids)}{more(left)} {'is' if one else 'are'} retried within "
            f"{'its' if one else 'their'} window, then a person takes over"
        )
    skipped = [s.failed_step for s in sequences if s.recovery is Decision.CONTINUE]
    if skipped:
        shown = skipped[:LIST_LIMIT]
        parts.append(
            f"{join(shown)} {'is' if len(skipped) == 1 else 'are'} best-effort: "
            f"{'its' if len(skipped) == 1 else 'their'} failure rolls nothing back and the run "
            "completes"
        )
    nothing = [s.failed_step for s in rolling if s.final_status is RunStatus.FAILED][:LIST_LIMIT]
    if nothing:
        parts.append(f"When {join(nothing, 'or')} fails, nothing is undone: the run ends failed")
    return ". ".join(parts) + "."


def more(count: int) -> str:
    """`` and 3 more`` (nothing when there are none)."""
    return f" and {count} more" if count > 0 else ""


def policy_intro(plan: Plan) -> str:
    """What a failed compensation does to this process's rollback, and who hears of it."""
    policies = plan.rollback_failure_policy
    if not policies:
        return f"No rollback of {plan.process.name} runs a compensation, so no rollback can fail."
    by_route: dict[str, list[str]] = {}
    for policy in policies:
        by_route.setdefault(policy.alert_to, []).append(policy.step)
    main = max(by_route, key=lambda route: len(by_route[route]))
    others = [
        f"{route} for {join(steps[:LIST_LIMIT])}"
        for route, steps in by_route.items()
        if route != main
    ]
    routes = main + (f" ({'; '.join(others)})" if others else "")
    ids = [p.step for p in policies[:LIST_LIMIT]]
    more = f" and {len(policies) - len(ids)} more" if len(policies) > len(ids) else ""
    first = policies[0]
    return (
        f"If undoing {join(ids, 'or')}{more} fails, it is retried for "
        f"{bound_label(first.bound)}; then the rollback stops at that step: it is marked "
        "compensation_failed, the compensatable steps before it stay completed, and the run "
        f"waits in needs_manual_review with a compensation_failed alert to {routes}."
    )
