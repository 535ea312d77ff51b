"""The recovery plan as Markdown: the default output of ``sagaguard plan``.

Each of the seven parts becomes a section with a table or a list, followed by the example
journal states and a Mermaid flowchart. Everything shown comes from the :class:`Plan`;
this module only chooses how it reads (pure: a plan in, a string out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sagaguard.planner.plan import (
    DecisionEntry,
    ExpectedState,
    FlowEdgeKind,
    Injection,
    JournalRow,
    PartialFailureTest,
    Plan,
    RollbackSequence,
    StepEntry,
)
from sagaguard.planner.render.labels import (
    CATEGORY_LABELS,
    DECISION_LABELS,
    SECTIONS,
    SITUATION_LABELS,
    backoff_text,
    count_text,
    duration,
    id_list,
    is_code,
    words,
)
from sagaguard.planner.render.mermaid import render_mermaid
from sagaguard.planner.render.view import (
    checklist_by_area,
    decision_grid,
    findings_by_severity,
    flow_legend,
    legend_example,
    policy_intro,
    reason_groups,
    reason_scope,
    rollback_intro,
    severity_counts,
    situations,
)

__all__ = ["render_markdown"]

_TITLES = dict(SECTIONS)

# How each kind of arrow looks in the Mermaid flowchart (its linkStyle).
_ARROW_WORDS = {
    FlowEdgeKind.FORWARD: "Solid blue",
    FlowEdgeKind.FAILURE: "Red dashed",
    FlowEdgeKind.COMPENSATION: "Orange dashed",
    FlowEdgeKind.UNKNOWN_OUTCOME: "Purple dotted",
    FlowEdgeKind.COMPENSATION_FAILED: "Red dotted",
}


def render_markdown(plan: Plan) -> str:
    """The whole plan as one Markdown document (ends with a newline)."""
    parts = [
        _header(plan),
        _step_table(plan),
        _rollback_sequences(plan),
        _rollback_failure_policy(plan),
        _decision_matrix(plan),
        _tests(plan),
        _checklist(plan),
        _findings(plan),
        _example_states(plan),
        _flow(plan),
    ]
    text = "\n\n".join("\n".join(lines).strip("\n") for lines in parts)
    return text + "\n"


# --- building blocks -------------------------------------------------------------------------


def _cell(text: str | None) -> str:
    """Text made safe for a table cell: pipes escaped, line breaks kept as <br>."""
    if text is None or text == "":
        return "—"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _inline(text: str) -> str:
    """Text on one line: a line break from a YAML block scalar would end a list item."""
    return " ".join(text.split())


def _spec_text(text: str) -> str:
    """Spec text on one line; a binding to code reads ``code: `module:function```."""
    if is_code(text):
        return f"code: {_code(text)}"
    return _inline(text)


def _code(text: str) -> str:
    """Inline code that survives backticks inside ``text``."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _codes(ids: Iterable[str], *, empty: str = "—") -> str:
    return id_list((_code(i) for i in ids), empty=empty)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _section(anchor: str) -> list[str]:
    return [f"## {_TITLES[anchor]}", ""]


# --- header ----------------------------------------------------------------------------------


def _header(plan: Plan) -> list[str]:
    process = plan.process
    lines = [f"# Recovery plan: {process.name}", ""]
    if process.description:
        lines += [f"> {_inline(process.description)}", ""]
    routes = (
        ", ".join(f"{_code(key)} → {value}" for key, value in process.alerts.items())
        or "none declared"
    )
    observability = (
        _codes(o.value for o in process.observability) if process.observability else "none"
    )
    lines += [
        f"- **Process:** {_code(process.name)}, version {process.version}",
        f"- **Steps:** {' → '.join(_code(s.id) for s in plan.steps)}",
        f"- **State store:** {_code(process.state_store.value)}",
        f"- **Observability:** {observability}",
        f"- **Alert routes:** {routes}",
        f"- **Findings:** {_finding_counts(plan)}",
        f"- **Plan format:** {_code(plan.format)}",
        "",
        "**Contents:** " + " · ".join(f"[{t}](#{_slug(t)})" for _, t in SECTIONS),
    ]
    return lines


def _finding_counts(plan: Plan) -> str:
    counts = severity_counts(plan)
    if not counts:
        return "none"
    text = ", ".join(count_text(sev, n) for sev, n in counts)
    return f"{text} (see [7. Findings](#{_slug(_TITLES['findings'])}))"


def _slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


# --- 1. step table ---------------------------------------------------------------------------


def _step_table(plan: Plan) -> list[str]:
    lines = _section("steps")
    lines += _table(
        ["#", "step", "class", "changes", "idempotent", "forward action", "compensation"],
        (
            [
                str(s.position),
                _code(s.id),
                s.step_class.value,
                ", ".join(c.value for c in s.changes),
                s.idempotent.value,
                _cell(s.action),
                _cell(_compensation_text(s)),
            ]
            for s in plan.steps
        ),
    )
    for step in plan.steps:
        lines += ["", *_step_detail(step)]
    return lines


def _compensation_text(step: StepEntry) -> str:
    if step.compensation:
        return step.compensation
    if step.mitigation:
        return f"none (irreversible); instead: {_inline(step.mitigation)}"
    return "none"


def _step_detail(step: StepEntry) -> list[str]:
    limits = f"timeout {duration(step.timeout_s)}, at most {step.max_attempts} attempts"
    lines = [f"### {step.position}. `{step.id}`", ""]
    lines.append(f"- **Forward:** {_inline(step.action)}")
    if step.compensation:
        lines.append(f"- **Compensation:** {_inline(step.compensation)}")
    if step.mitigation:
        lines.append(f"- **Mitigation (cannot be undone):** {_inline(step.mitigation)}")
    lines.append(f"- **Do not compensate when:** {_inline(step.rollback_condition)}")
    if step.verify:
        lines.append(f"- **Verify the real outcome:** {_spec_text(step.verify)}")
    if step.external_id:
        lines.append(f"- **External id:** {_code(step.external_id)}")
    lines.append(f"- **Limits:** {limits}")
    lines.append(f"- **Alerts go to:** {step.alert_route or 'no route declared'}")
    lines.append(f"- **Persist:** {_codes(step.persist)}")
    lines.append("- **Success signals:**")
    lines += [f"  - {_inline(signal)}" for signal in step.success_signals]
    lines.append("- **Failure signals:**")
    lines += [f"  - {_inline(signal)}" for signal in step.failure_signals]
    return lines


# --- 2. rollback sequences -------------------------------------------------------------------


def _rollback_sequences(plan: Plan) -> list[str]:
    lines = _section("rollback-sequences")
    lines += [
        rollback_intro(plan),
        "",
        *_table(
            ["failed step", "compensate (latest first)", "irreversible on the way", "ends as"],
            (
                [
                    _code(seq.failed_step),
                    _codes(seq.compensate, empty="nothing to undo"),
                    _codes((i.step for i in seq.irreversible), empty="—"),
                    _code(seq.final_status.value),
                ]
                for seq in plan.rollback_sequences
            ),
        ),
    ]
    for seq in plan.rollback_sequences:
        lines += ["", *_sequence_detail(seq)]
    return lines


def _sequence_detail(seq: RollbackSequence) -> list[str]:
    handling = seq.failed_step_handling
    lines = [f"### If `{seq.failed_step}` fails", ""]
    lines.append(
        f"- **It failed definitely** ({DECISION_LABELS[handling.definite_failure.decision]}): "
        f"{_inline(handling.definite_failure.instruction)}"
    )
    lines.append(
        f"- **Its outcome is unknown** ({DECISION_LABELS[handling.unknown_outcome.decision]}): "
        f"{_inline(handling.unknown_outcome.instruction)}"
    )
    for item in seq.irreversible:
        lines.append(f"- **`{item.step}` cannot be undone:** {_inline(item.mitigation)}")
    lines += ["", "Procedure:", ""]
    lines += [f"{n}. {_inline(instruction)}" for n, instruction in enumerate(seq.procedure, 1)]
    if seq.compensate:
        ending = f"The run ends as `{seq.final_status.value}` once every compensation succeeded."
    else:
        ending = f"The run ends as `{seq.final_status.value}`: nothing to undo."
    lines += ["", ending]
    return lines


# --- 3. rollback-failure policy --------------------------------------------------------------


def _rollback_failure_policy(plan: Plan) -> list[str]:
    lines = _section("rollback-failure-policy")
    if not plan.rollback_failure_policy:
        return [*lines, policy_intro(plan)]
    lines += [
        policy_intro(plan),
        "",
        *_table(
            ["step", "compensation", "attempts", "left waiting", "alert"],
            (
                [
                    _code(p.step),
                    _cell(p.compensation),
                    str(p.attempts),
                    _codes(p.halted_steps, empty="nothing"),
                    _cell(f"{p.alert_kind.value} → {p.alert_to}"),
                ]
                for p in plan.rollback_failure_policy
            ),
        ),
    ]
    for policy in plan.rollback_failure_policy:
        lines += [
            "",
            f"### Undoing `{policy.step}` fails",
            "",
            f"- **Compensation:** {_inline(policy.compensation)}",
            f"- **Attempts:** {policy.attempts}, backoff {backoff_text(policy.backoff)}",
            f"- **Retried when:** {_inline(policy.retry_when)}",
            f"- **Manual review when:** {_inline(policy.manual_review_when)}",
            f"- **Left completed while the run waits:** "
            f"{_codes(policy.halted_steps, empty='nothing')}",
            f"- **Alert:** `{policy.alert_kind.value}` → {_inline(policy.alert_to)}",
        ]
    return lines


# --- 4. decision matrix ----------------------------------------------------------------------


def _decision_matrix(plan: Plan) -> list[str]:
    lines = _section("decision-matrix")
    lines += [_matrix_legend(plan), ""]
    lines += _table(
        ["step", *(SITUATION_LABELS[s] for s in situations(plan))],
        ([_code(step), *(_matrix_cell(e) for e in row)] for step, row in decision_grid(plan)),
    )
    lines += ["", "Why:", ""]
    for group in reason_groups(plan):
        entry = group.entry
        who = reason_scope(plan, group) or _codes(group.steps)
        lines.append(
            f"- *{SITUATION_LABELS[entry.situation]}* for {who} → **{_matrix_cell(entry)}**: "
            f"{_inline(entry.reason)}"
        )
    return lines


def _matrix_legend(plan: Plan) -> str:
    text = f"What to do with each step of {plan.process.name} in each situation."
    example = legend_example(plan)
    if example is None:
        return text
    entry, step = example
    then = DECISION_LABELS[entry.then] if entry.then else ""
    alert = f", and {step.alert_route or 'a person'} is alerted (🔔)" if entry.alert else ""
    return (
        f"{text} A cell reads `a → b`: for example `{_matrix_cell(entry)}` for "
        f"{step.id}'s {SITUATION_LABELS[entry.situation]} means retry within its "
        f"{step.max_attempts} attempts, then {then}{alert}."
    )


def _matrix_cell(entry: DecisionEntry | None) -> str:
    if entry is None:
        return "—"
    text = DECISION_LABELS[entry.decision]
    if entry.then is not None:
        text += f" → {DECISION_LABELS[entry.then]}"
    if entry.alert:
        text += " 🔔"
    return text


# --- 5. partial-failure tests ----------------------------------------------------------------


def _tests(plan: Plan) -> list[str]:
    lines = _section("tests")
    lines += _table(
        ["id", "category", "step", "inject", "run ends as", "alert"],
        (
            [
                _code(t.id),
                CATEGORY_LABELS[t.category],
                _code(t.step),
                _cell("; ".join(_injection(i) for i in t.injection)),
                _code(t.expected.run_status.value),
                _cell(_alert_text(t.expected)),
            ]
            for t in plan.tests
        ),
    )
    for test in plan.tests:
        lines += ["", *_test_detail(test)]
    return lines


def _injection(injection: Injection) -> str:
    times = "every attempt" if injection.times is None else f"×{injection.times}"
    return f"{injection.fault.value} {words(injection.point.value)} {injection.step} ({times})"


def _alert_text(expected: ExpectedState) -> str:
    alert = expected.alert
    if alert is None:
        return "none"
    route = alert.route or "no route declared"
    return f"{alert.kind.value} on {alert.step} → {route}"


def _test_detail(test: PartialFailureTest) -> list[str]:
    expected = test.expected
    lines = [f"### `{test.id}`: {CATEGORY_LABELS[test.category]}", "", _inline(test.scenario), ""]
    lines.append("- **Inject:** " + "; ".join(_injection(i) for i in test.injection))
    lines.append(f"- **Run ends as:** `{expected.run_status.value}`")
    lines.append(f"- **Still active:** {_codes(expected.active, empty='nothing')}")
    lines.append(f"- **Compensated (in order):** {_codes(expected.compensated, empty='nothing')}")
    lines.append(f"- **Waiting for a person:** {_codes(expected.manual_review, empty='nothing')}")
    lines.append(f"- **Alert:** {_alert_text(expected)}")
    lines += [f"- {_inline(check)}" for check in expected.checks]
    return lines


# --- 6. checklist ----------------------------------------------------------------------------


def _checklist(plan: Plan) -> list[str]:
    lines = _section("checklist")
    for area, items in checklist_by_area(plan):
        lines += [f"### {area.value.capitalize()}", ""]
        for item in items:
            about = f" ({_codes(item.steps)})" if item.steps else ""
            lines.append(f"- [ ] **{_inline(item.title)}**{about}: {_inline(item.detail)}")
        lines.append("")
    return lines


# --- 7. findings -----------------------------------------------------------------------------


def _findings(plan: Plan) -> list[str]:
    lines = _section("findings")
    if not plan.findings:
        return [*lines, "No findings: the process follows every rule sagaguard checks."]
    lines += _table(
        ["severity", "step", "code", "message"],
        (
            [
                f"**{f.severity.value}**" if f.severity.value == "error" else f.severity.value,
                _code(f.step) if f.step else "(process)",
                _code(f.code),
                _cell(f.message),
            ]
            for f in findings_by_severity(plan)
        ),
    )
    return lines


# --- example states and flow -----------------------------------------------------------------


def _example_states(plan: Plan) -> list[str]:
    states = plan.example_states
    lines = _section("example-states")
    lines += [f"The most dangerous failure of this process: {_inline(states.scenario)}", ""]
    lines += [f"**Before recovery** (run `{states.run_status_before.value}`):", ""]
    lines += _journal(states.before)
    lines += ["", f"**Recovery:** {_inline(states.recovery)}", ""]
    lines += [f"**After recovery** (run `{states.run_status_after.value}`):", ""]
    lines += _journal(states.after)
    return lines


def _journal(rows: Sequence[JournalRow]) -> list[str]:
    return _table(
        ["operation_id", "step_id", "status", "external id", "attempts", "reason"],
        (
            [
                _code(r.operation_id),
                _code(r.step_id),
                f"**{r.status.value}**",
                _code(r.external_id) if r.external_id else "—",
                str(r.attempts),
                _cell(r.reason),
            ]
            for r in rows
        ),
    )


def _flow(plan: Plan) -> list[str]:
    lines = _section("flow")
    lines += [f"- **{_ARROW_WORDS[kind]}:** {text}" for kind, text in flow_legend(plan)]
    lines += [
        "",
        "```mermaid",
        *render_mermaid(plan.flow),
        "```",
    ]
    return lines
