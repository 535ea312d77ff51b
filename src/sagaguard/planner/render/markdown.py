"""The recovery plan as Markdown: the default output of ``sagaguard plan``.

A plan with error findings opens with "Not ready for production" and the errors. Each of
the seven parts becomes a section with a table or a list, followed by the example journal
states and a Mermaid flowchart. Everything shown comes from the :class:`Plan`; this module
only chooses how it reads (pure: a plan in, a string out).
"""

from __future__ import annotations

from sagaguard.planner.plan import (
    DecisionEntry,
    FlowEdgeKind,
    Plan,
    RollbackSequence,
    StepAction,
    StepEntry,
)
from sagaguard.planner.render.labels import (
    ANSWER_LABELS,
    DECISION_LABELS,
    KIND_LABELS,
    LIST_LIMIT,
    SECTIONS,
    SITUATION_LABELS,
    backoff_text,
    bound_label,
    count_text,
    duration,
    role_label,
)
from sagaguard.planner.render.markdown_runs import example_states_section, tests_section
from sagaguard.planner.render.markdown_text import (
    cell,
    code,
    codes,
    inline,
    listed_ids,
    section,
    spec_text,
    table,
)
from sagaguard.planner.render.mermaid import render_mermaid
from sagaguard.planner.render.rollbacks import Rollbacks, policy_intro, procedure, rollback_intro
from sagaguard.planner.render.view import (
    checklist_by_area,
    duplicate_entry,
    findings_by_severity,
    flow_legend,
    legend_example,
    matrix_tables,
    reason_groups,
    severity_counts,
)
from sagaguard.rules import Decision

__all__ = ["render_markdown"]

_TITLES = dict(SECTIONS)

# How each kind of arrow looks in the Mermaid flowchart (its linkStyle).
_ARROW_WORDS = {
    FlowEdgeKind.FORWARD: "Solid blue",
    FlowEdgeKind.FAILURE: "Red dashed",
    FlowEdgeKind.FORWARD_RECOVERY: "Purple dashed",
    FlowEdgeKind.SKIPPED: "Grey dashed",
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
        tests_section(plan),
        _checklist(plan),
        _findings(plan),
        example_states_section(plan),
        _flow(plan),
    ]
    text = "\n\n".join("\n".join(lines).strip("\n") for lines in parts)
    return text + "\n"


# --- header ----------------------------------------------------------------------------------


def _header(plan: Plan) -> list[str]:
    process = plan.process
    lines = [f"# Recovery plan: {process.name}", ""]
    if not plan.ready:
        errors = plan.errors
        lines += [
            f"> **Not ready for production:** {count_text(errors[0].severity, len(errors))} "
            "must be fixed first.",
            ">",
            *(
                f"> - {code(f.code)}{' on ' + code(f.step) if f.step else ''}: {inline(f.message)}"
                for f in errors
            ),
            "",
        ]
    if process.description:
        lines += [f"> {inline(process.description)}", ""]
    routes = (
        ", ".join(f"{code(key)} → {value}" for key, value in process.alerts.items())
        or "none declared"
    )
    observability = (
        codes([o.value for o in process.observability]) if process.observability else "none"
    )
    lines += [
        f"- **Process:** {code(process.name)}, version {process.version}",
        f"- **Steps:** {_step_path(plan)}",
        f"- **Point of no return:** {_pivot_text(plan)}",
        f"- **State store:** {code(process.state_store.value)}",
        f"- **Observability:** {observability}",
        f"- **Alert routes:** {routes}",
        f"- **Resubmission window:** {duration(process.resubmission_window_s)} (idempotency "
        "keys must outlive it)",
        f"- **Findings:** {_finding_counts(plan)}",
        f"- **Plan format:** {code(plan.format)}",
        "",
        "**Contents:** " + " · ".join(f"[{t}](#{_slug(t)})" for _, t in SECTIONS),
    ]
    return lines


def _step_path(plan: Plan) -> str:
    shown = plan.steps[: 2 * LIST_LIMIT]
    more = len(plan.steps) - len(shown)
    text = " → ".join(f"**{code(s.id)}** (pivot)" if s.pivot else code(s.id) for s in shown)
    return f"{text} → … ({more} more)" if more else text


def _pivot_text(plan: Plan) -> str:
    if plan.pivot is None:
        return "none: every step can be undone, so every failure for good rolls back"
    return f"{code(plan.pivot.step)}, {inline(plan.pivot.reason)}"


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


def _role(plan: Plan, step: StepEntry) -> str:
    declared = plan.pivot.declared if plan.pivot else False
    text = role_label(
        step.phase, pivot=plan.pivot is not None, pivot_declared=declared, required=step.required
    )
    return f"**{text}**" if step.pivot else text


def _step_table(plan: Plan) -> list[str]:
    lines = section("steps")
    lines += table(
        ["#", "step", "class", "role", "changes", "idempotent", "forward action", "compensation"],
        (
            [
                str(s.position),
                code(s.id),
                s.step_class.value,
                _role(plan, s),
                ", ".join(c.value for c in s.changes),
                s.idempotent.value,
                cell(s.action),
                cell(_compensation_text(s)),
            ]
            for s in plan.steps
        ),
    )
    for step in plan.steps:
        lines += ["", *_step_detail(plan, step)]
    return lines


def _compensation_text(step: StepEntry) -> str:
    if step.compensation and not step.compensation_runs:
        return f"{step.compensation} (by hand only: the engine never runs it)"
    if step.compensation:
        return step.compensation
    if step.mitigation:
        return f"none (irreversible); instead: {inline(step.mitigation)}"
    return "none"


def _limits(step: StepEntry) -> str:
    text = f"timeout {duration(step.timeout_s)}, at most {step.max_attempts} attempt"
    text += "" if step.max_attempts == 1 else "s"
    if step.retry_for_s:
        text += f"; after the pivot, retried for {duration(step.retry_for_s)} before a person"
    if step.verify_after_s:
        text += f"; a 'not found' from verify counts after {duration(step.verify_after_s)}"
    return text


def _verify_line(step: StepEntry) -> str | None:
    if not step.verify:
        return None
    if step.verify_bound:
        return f"{spec_text(step.verify)} (code bound: the engine asks it)"
    return (
        f"{spec_text(step.verify)} (described only: no code is bound, so the engine cannot ask "
        "and a lost answer goes to a person; bind `verify: module:function`)"
    )


def _step_detail(plan: Plan, step: StepEntry) -> list[str]:
    title = f"### {step.position}. `{step.id}`"
    if step.pivot:
        title += " (the point of no return)"
    elif not step.required:
        title += " (best-effort)"
    lines = [title, ""]
    lines.append(f"- **Forward:** {inline(step.action)}")
    if step.compensation:
        lines.append(f"- **Compensation:** {inline(_compensation_text(step))}")
    if step.mitigation:
        lines.append(f"- **Mitigation (cannot be undone):** {inline(step.mitigation)}")
    if not step.required:
        lines.append(
            f"- **Best-effort:** never rolls the run back; failing for good it ends failed and "
            f"a best_effort_failed alert goes to {step.alert_to}"
        )
    lines.append("- **Do not compensate:**")
    lines += [f"  - {inline(c)}" for c in step.rollback_conditions]
    verify = _verify_line(step)
    if verify:
        lines.append(f"- **Verify the real outcome:** {verify}")
    if step.external_id:
        lines.append(f"- **External id:** {code(step.external_id)}")
    lines.append(f"- **Lost answer settled by:** {KIND_LABELS[step.kind]}")
    lines.append(f"- **Limits:** {_limits(step)}")
    lines.append(f"- **Alerts go to:** {step.alert_to}")
    lines.append(f"- **Persist:** {codes(step.persist)}")
    lines.append("- **Signals:**")
    for signal in step.signals:
        source = " (from the spec)" if signal.from_spec else ""
        lines.append(
            f"  - *{ANSWER_LABELS[signal.answer]}*{source}: {inline(signal.looks_like)} → "
            f"{inline(signal.then)}"
        )
    return lines


# --- 2. rollback sequences -------------------------------------------------------------------


def _rollback_sequences(plan: Plan) -> list[str]:
    lines = section("rollback-sequences")
    rollbacks = Rollbacks.of(plan)
    lines += [
        rollback_intro(plan),
        "",
        *table(
            ["failed step", "then", "compensate (latest first)", "kept", "ends as"],
            (
                [
                    code(seq.failed_step),
                    cell(_then(seq)),
                    listed_ids(rollbacks.compensated(seq), seq.compensate_count, empty="nothing"),
                    listed_ids(rollbacks.kept(seq), seq.keep_count, empty="—"),
                    code(seq.final_status.value),
                ]
                for seq in plan.rollback_sequences
            ),
        ),
    ]
    for seq in plan.rollback_sequences:
        lines += ["", *_sequence_detail(plan, seq, rollbacks)]
    return lines


def _then(seq: RollbackSequence) -> str:
    if seq.recovery is not Decision.ROLLBACK:
        return seq.summary
    return "roll back" if seq.rollback_from else "fail, nothing to undo"


def _action(label: str, action: StepAction) -> str:
    decision = DECISION_LABELS[action.decision]
    if action.then is not None:
        decision += f" → {DECISION_LABELS[action.then]}"
    return f"- **{label}** ({decision}): {inline(action.instruction)}"


def _sequence_detail(plan: Plan, seq: RollbackSequence, rollbacks: Rollbacks) -> list[str]:
    lines = [f"### If `{seq.failed_step}` fails", ""]
    lines.append(_action("It failed definitely", seq.definite_failure))
    lines.append(_action("It was refused", seq.refused))
    lines.append(_action("Its outcome is unknown", seq.unknown_outcome))
    lines += ["", "Once it failed for good:", ""]
    lines += [f"{n}. {inline(line)}" for n, line in enumerate(procedure(plan, seq, rollbacks), 1)]
    lines += ["", f"The run ends as `{seq.final_status.value}`."]
    return lines


# --- 3. rollback-failure policy --------------------------------------------------------------


def _rollback_failure_policy(plan: Plan) -> list[str]:
    lines = section("rollback-failure-policy")
    if not plan.rollback_failure_policy:
        return [*lines, policy_intro(plan)]
    rollbacks = Rollbacks.of(plan)
    lines += [
        policy_intro(plan),
        "",
        *table(
            ["step", "compensation", "retried", "left waiting", "alert"],
            (
                [
                    code(p.step),
                    cell(p.compensation),
                    bound_label(p.bound),
                    listed_ids(rollbacks.halted(p.step), p.halted_count, empty="nothing"),
                    cell(f"{p.alert_kind.value} → {p.alert_to}"),
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
            f"- **Compensation:** {inline(policy.compensation)}",
            f"- **Retried:** {bound_label(policy.bound)}, backoff {backoff_text(policy.backoff)}",
            f"- **Retried when:** {inline(policy.retry_when)}",
            f"- **Manual review when:** {inline(policy.manual_review_when)}",
            f"- **Left completed while the run waits:** "
            f"{listed_ids(rollbacks.halted(policy.step), policy.halted_count, empty='nothing')}",
            f"- **Alert:** `{policy.alert_kind.value}` → {inline(policy.alert_to)}",
        ]
    return lines


# --- 4. decision matrix ----------------------------------------------------------------------


def _decision_matrix(plan: Plan) -> list[str]:
    lines = section("decision-matrix")
    lines += [_matrix_legend(plan), ""]
    for grid in matrix_tables(plan):
        lines += [f"**{grid.title}**", ""]
        lines += table(
            ["step", *(SITUATION_LABELS[s] for s in grid.situations)],
            ([code(step), *(_matrix_cell(e) for e in row)] for step, row in grid.rows),
        )
        lines.append("")
    lines += [
        "A dash marks a situation that cannot arise for the step: verify answers need verify "
        "code bound, and an undo can only fail for a step the engine compensates.",
        "",
    ]
    duplicate = duplicate_entry(plan)
    if duplicate is not None:
        lines += [
            f"**A duplicate request** (any step) → **{DECISION_LABELS[duplicate.decision]}**: "
            f"{inline(duplicate.reason)}",
            "",
        ]
    lines += ["Why:", ""]
    for group in reason_groups(plan):
        entry = group.entry
        who = f"any step of {plan.process.name}" if group.everyone else codes(group.steps)
        lines.append(
            f"- *{SITUATION_LABELS[entry.situation]}* for {who} → **{_matrix_cell(entry)}**: "
            f"{inline(entry.reason)}"
        )
    return lines


def _matrix_legend(plan: Plan) -> str:
    text = f"What the engine does with each step of {plan.process.name} in each situation."
    example = legend_example(plan)
    if example is None:
        return text
    entry, step = example
    then = DECISION_LABELS[entry.then] if entry.then else ""
    alert = f", and {step.alert_to} is alerted (🔔)" if entry.alert else ""
    return (
        f"{text} A cell reads `a → b`: for example `{_matrix_cell(entry)}` for "
        f"{step.id}'s {SITUATION_LABELS[entry.situation]} means retry "
        f"({bound_label(entry.bound)}), then {then}{alert}."
    )


def _matrix_cell(entry: DecisionEntry | None) -> str:
    if entry is None:
        return "—"
    text = DECISION_LABELS[entry.decision]
    if entry.then is not None:
        text += f" → {DECISION_LABELS[entry.then]}"
    if entry.alert is not None:
        text += " 🔔"
    return text


# --- 6. checklist ----------------------------------------------------------------------------


def _checklist(plan: Plan) -> list[str]:
    lines = section("checklist")
    for area, items in checklist_by_area(plan):
        lines += [f"### {area.value.capitalize()}", ""]
        for item in items:
            about = f" ({codes(item.steps)})" if item.steps else ""
            lines.append(f"- [ ] **{inline(item.title)}**{about}: {inline(item.detail)}")
            if item.commands:
                lines += ["", "  ```console", *(f"  {c}" for c in item.commands), "  ```", ""]
        lines.append("")
    return lines


# --- 7. findings -----------------------------------------------------------------------------


def _findings(plan: Plan) -> list[str]:
    lines = section("findings")
    if not plan.findings:
        return [*lines, "No findings: the process follows every rule sagaguard checks."]
    lines += table(
        ["severity", "step", "code", "message"],
        (
            [
                f"**{f.severity.value}**" if f.severity.value == "error" else f.severity.value,
                code(f.step) if f.step else "(process)",
                code(f.code),
                cell(f.message),
            ]
            for f in findings_by_severity(plan)
        ),
    )
    return lines


def _flow(plan: Plan) -> list[str]:
    lines = section("flow")
    lines += [f"- **{_ARROW_WORDS[kind]}:** {text}" for kind, text in flow_legend(plan)]
    lines += [
        "",
        "```mermaid",
        *render_mermaid(plan.flow),
        "```",
    ]
    return lines
