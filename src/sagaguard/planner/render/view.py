"""Groupings of plan data that both the Markdown and the HTML renderer show.

They only regroup, reorder or count what the plan holds (findings by severity, checklist
items by area, the decision matrix in three tables, a rollback as numbered lines, what a
test expects in a few lines), so that the two documents say the same thing in the same
order. Long lists are cut at :data:`~.labels.LIST_LIMIT` ids, so a rendered plan grows
linearly with the process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.model import StepClass
from sagaguard.planner.plan import (
    Area,
    ChainLink,
    ChecklistItem,
    DecisionEntry,
    ExpectedState,
    Finding,
    FlowEdge,
    FlowEdgeKind,
    FlowNodeKind,
    Plan,
    RollbackSequence,
    RunStatus,
    Severity,
    StepEntry,
    StepStatus,
)
from sagaguard.planner.render.labels import (
    LIST_LIMIT,
    MATRIX_GROUPS,
    SEVERITY_ORDER,
    bound_label,
    count_label,
    duration,
)
from sagaguard.planner.wording import join, plural
from sagaguard.rules import Decision, Situation, StepKind

__all__ = [
    "ExpectationView",
    "MatrixTable",
    "ReasonGroup",
    "Rollbacks",
    "arises",
    "checklist_by_area",
    "duplicate_entry",
    "expectation_view",
    "findings_by_severity",
    "flow_legend",
    "legend_example",
    "matrix_tables",
    "policy_intro",
    "procedure",
    "reason_groups",
    "rollback_intro",
    "severity_counts",
    "steps_by_id",
]


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """One ruling of the decision matrix and every step it applies to."""

    steps: tuple[str, ...]
    entry: DecisionEntry
    everyone: bool
    """True when it applies to every step of the process."""


@dataclass(frozen=True, slots=True)
class MatrixTable:
    """One of the decision matrix's tables: its situations and a row per step."""

    title: str
    situations: tuple[Situation, ...]
    rows: tuple[tuple[str, tuple[DecisionEntry | None, ...]], ...]


_VERIFY_SITUATIONS = (
    Situation.VERIFY_NOT_APPLIED,
    Situation.VERIFY_TOO_SOON,
    Situation.VERIFY_FAILED,
)
_COMPENSATION_SITUATIONS = (
    Situation.COMPENSATION_FAILED,
    Situation.COMPENSATION_REFUSED,
    Situation.COMPENSATION_UNKNOWN,
)


def arises(step: StepEntry, situation: Situation) -> bool:
    """False when ``situation`` can never happen to ``step`` as it is bound.

    Verify answers only reach a step with verify code bound (a "not found too soon" only one
    with a settle delay); a compensation only fails for a step the engine compensates.
    """
    if situation in _VERIFY_SITUATIONS:
        if step.kind is not StepKind.VERIFIABLE:
            return False
        return situation is not Situation.VERIFY_TOO_SOON or step.verify_after_s > 0
    if situation in _COMPENSATION_SITUATIONS:
        return step.compensation_runs
    return True


def matrix_tables(plan: Plan) -> list[MatrixTable]:
    """The matrix as three tables: the step's own call, verify, a rollback reaching it.

    A cell is None (shown as a dash) where the situation cannot arise for the step.
    """
    cells = {(e.step, e.situation): e for e in plan.decision_matrix}
    return [
        MatrixTable(
            title=title,
            situations=group,
            rows=tuple(
                (
                    s.id,
                    tuple(cells.get((s.id, sit)) if arises(s, sit) else None for sit in group),
                )
                for s in plan.steps
            ),
        )
        for title, group in MATRIX_GROUPS
    ]


def duplicate_entry(plan: Plan) -> DecisionEntry | None:
    """The ruling for a repeated operation_id (the same for every step)."""
    return next(
        (e for e in plan.decision_matrix if e.situation is Situation.DUPLICATE_REQUEST), None
    )


def reason_groups(plan: Plan) -> list[ReasonGroup]:
    """Matrix entries with the same ruling and reason merged, by situation then first step."""
    order = {sit: i for i, sit in enumerate(Situation)}
    groups: dict[tuple[object, ...], list[DecisionEntry]] = {}
    by_id = steps_by_id(plan)
    for entry in plan.decision_matrix:
        if entry.situation is Situation.DUPLICATE_REQUEST:
            continue
        if not arises(by_id[entry.step], entry.situation):
            continue
        key = (entry.situation, entry.decision, entry.then, entry.alert, entry.reason)
        groups.setdefault(key, []).append(entry)
    total = len(plan.steps)
    merged = [
        ReasonGroup(
            steps=tuple(e.step for e in entries),
            entry=entries[0],
            everyone=len(entries) == total > 1,
        )
        for entries in groups.values()
    ]
    return sorted(merged, key=lambda g: order[g.entry.situation])


def findings_by_severity(plan: Plan) -> list[Finding]:
    """Findings, errors first (stable within a severity)."""
    return sorted(plan.findings, key=lambda f: SEVERITY_ORDER[f.severity])


def severity_counts(plan: Plan) -> list[tuple[Severity, int]]:
    """How many findings of each severity, errors first; severities with none are left out."""
    counts: dict[Severity, int] = {}
    for finding in findings_by_severity(plan):
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return list(counts.items())


def checklist_by_area(plan: Plan) -> list[tuple[Area, list[ChecklistItem]]]:
    """Checklist items under their area (engineering first), areas without items left out."""
    grouped = [(area, [c for c in plan.checklist if c.area is area]) for area in Area]
    return [(area, items) for area, items in grouped if items]


# --- rollback --------------------------------------------------------------------------------


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
            f"keeps {join(kept)}{_more(longest.keep_count - len(kept))} (cannot be undone) "
            "with a mitigation"
        )
        if undone:
            first, *rest = undone
            then = f", then {join(rest)}" if rest else ""
            then += _more(longest.compensate_count - len(undone))
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
            f"{join(forward_ids)}{_more(left)} {'is' if one else 'are'} retried within "
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


def _more(count: int) -> str:
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


# --- decision matrix legend ------------------------------------------------------------------


def legend_example(plan: Plan) -> tuple[DecisionEntry, StepEntry] | None:
    """A bounded retry of the matrix to explain its notation with, alerting ones first."""
    retries = [
        e
        for e in plan.decision_matrix
        if e.decision is Decision.RETRY
        and e.then is not None
        and e.situation in (Situation.TIMEOUT, Situation.DEFINITE_FAILURE)
    ]
    retries.sort(key=lambda e: e.alert is None)
    if not retries:
        return None
    return retries[0], plan.step(retries[0].step)


# --- tests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """The first few step ids of a list, and how many it holds in all."""

    ids: list[str]
    total: int

    @property
    def more(self) -> int:
        """How many ids were left out."""
        return self.total - len(self.ids)


@dataclass(frozen=True, slots=True)
class ExpectationView:
    """What a test expects, in the few lists a reader looks for."""

    __test__ = False  # not a pytest test class despite its name

    active: Listed
    compensated: Listed
    waiting: Listed
    unknown: Listed
    failed: Listed
    calls: list[str]


def _span(ids: list[str], first: int, last: int) -> str:
    if first == last:
        return ids[first]
    return f"{ids[first]} … {ids[last]}" if last > first + 1 else f"{ids[first]}, {ids[last]}"


def expectation_view(
    plan: Plan, expected: ExpectedState, rollbacks: Rollbacks | None = None
) -> ExpectationView:
    """The expected state as lists: still active, compensated (in order), waiting, calls.

    The work is bounded by the number of runs in ``expected`` and :data:`LIST_LIMIT`, not by
    the number of steps.
    """
    rollbacks = rollbacks if rollbacks is not None else Rollbacks.of(plan)
    ids = rollbacks.ids
    found: dict[str, list[str]] = {name: [] for name in set(_LISTS.values())}
    totals: dict[str, int] = dict.fromkeys(found, 0)
    undone: list[tuple[int, int]] = []
    calls = []
    for e in expected.steps:
        first, last = rollbacks.at[e.first], rollbacks.at[e.last]
        name = _LISTS.get(e.status)
        if e.status is StepStatus.COMPENSATED:
            undone.append((first, last))
        elif name is not None:
            # A read-only step that completed leaves nothing active in the world.
            skip = name == "active"
            for position in range(first, last + 1):
                if len(found[name]) >= LIST_LIMIT:
                    break
                if not (skip and rollbacks.read_only(position)):
                    found[name].append(ids[position])
            totals[name] += last - first + 1
            if skip:
                totals[name] -= rollbacks.read_only_between(first, last)
        parts = [
            f"{what} {count_label(n)}"
            for what, n in (
                ("call", e.calls),
                ("verify", e.verifies),
                ("compensation", e.compensations),
            )
            if n.at_least
        ]
        if parts:
            calls.append(f"{_span(ids, first, last)}: " + ", ".join(parts))
    compensated: list[str] = []
    for first, last in reversed(undone):
        compensated += ids[max(first, last + 1 - LIST_LIMIT + len(compensated)) : last + 1][::-1]
        if len(compensated) >= LIST_LIMIT:
            break
    undone_total = sum(last - first + 1 for first, last in undone)
    return ExpectationView(
        active=Listed(found["active"], totals["active"]),
        compensated=Listed(compensated[:LIST_LIMIT], undone_total),
        waiting=Listed(found["waiting"], totals["waiting"]),
        unknown=Listed(found["unknown"], totals["unknown"]),
        failed=Listed(found["failed"], totals["failed"]),
        calls=calls,
    )


_LISTS = {
    StepStatus.COMPLETED: "active",
    StepStatus.NEEDS_MANUAL_REVIEW: "waiting",
    StepStatus.COMPENSATION_FAILED: "waiting",
    StepStatus.UNKNOWN: "unknown",
    StepStatus.FAILED: "failed",
}


# --- flow legend ---------------------------------------------------------------------------


def flow_legend(plan: Plan) -> list[tuple[FlowEdgeKind, str]]:
    """What each kind of arrow of this process's diagram shows, for the kinds it has."""
    flow = plan.flow
    nodes = {n.id: n for n in flow.nodes}
    edges: dict[FlowEdgeKind, list[FlowEdge]] = {kind: [] for kind in FlowEdgeKind}
    for edge in flow.edges:
        edges[edge.kind].append(edge)
    steps = [s.id for s in plan.steps]
    path = f"{steps[0]} to {steps[-1]}" if len(steps) > 1 else f"through {steps[0]}"
    legend = [(FlowEdgeKind.FORWARD, f"the forward path, {path}")]

    def back_node(node_id: str) -> str:
        node = nodes[node_id]
        verb = "mitigate" if node.kind is FlowNodeKind.MITIGATION else "undo"
        return f"{verb} {node.step}"

    def source(edge: FlowEdge) -> str:
        node = nodes[edge.source]
        return node.step or node.label

    failures = edges[FlowEdgeKind.FAILURE]
    into = [e for e in failures if nodes[e.target].step is not None]
    ended = [source(e) for e in failures if nodes[e.target].step is None][:LIST_LIMIT]
    parts = []
    if into:
        last = into[-1]
        parts.append(f"{source(last)} failing starts the rollback at {back_node(last.target)}")
    if ended:
        parts.append(f"{join(ended, 'or')} failing ends the run with nothing to undo")
    if parts:
        legend.append((FlowEdgeKind.FAILURE, "; ".join(parts)))
    forward = [source(e) for e in edges[FlowEdgeKind.FORWARD_RECOVERY]][:LIST_LIMIT]
    if forward:
        legend.append(
            (
                FlowEdgeKind.FORWARD_RECOVERY,
                f"after the pivot, {join(forward, 'or')} failing is retried, then goes to a "
                "person: nothing is rolled back",
            )
        )
    skipped = [source(e) for e in edges[FlowEdgeKind.SKIPPED]][:LIST_LIMIT]
    if skipped:
        legend.append(
            (
                FlowEdgeKind.SKIPPED,
                f"{join(skipped, 'or')} failing (best-effort) is skipped: the run goes on",
            )
        )
    back = edges[FlowEdgeKind.COMPENSATION]
    if back:
        chain = [back_node(e.source) for e in back][:LIST_LIMIT]
        more = f" and {len(back) - len(chain)} more" if len(back) > len(chain) else ""
        legend.append(
            (FlowEdgeKind.COMPENSATION, f"the rollback, latest first: {', '.join(chain)}{more}")
        )
    unknown = [source(e) for e in edges[FlowEdgeKind.UNKNOWN_OUTCOME]][:LIST_LIMIT]
    if unknown:
        legend.append(
            (
                FlowEdgeKind.UNKNOWN_OUTCOME,
                f"an outcome of {join(unknown, 'or')} that stays unknown goes to "
                "needs_manual_review",
            )
        )
    undo = [source(e) for e in edges[FlowEdgeKind.COMPENSATION_FAILED]][:LIST_LIMIT]
    if undo:
        legend.append(
            (
                FlowEdgeKind.COMPENSATION_FAILED,
                f"a failed undo of {join(undo, 'or')} goes to needs_manual_review",
            )
        )
    return legend
