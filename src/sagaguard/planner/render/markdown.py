"""The recovery plan as Markdown: the default output of ``sagaguard plan``.

A plan with error findings opens with "Not ready for production" and the errors. Each of
the seven parts becomes a section with a table or a list, followed by the example journal
states and a Mermaid flowchart. Everything shown comes from the :class:`Plan`; this module
only chooses how it reads (pure: a plan in, a string out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sagaguard.planner.plan import (
    DecisionEntry,
    FlowEdgeKind,
    Injection,
    JournalRow,
    PartialFailureTest,
    Plan,
    RollbackSequence,
    StepAction,
    StepEntry,
)
from sagaguard.planner.render.labels import (
    ANSWER_LABELS,
    CATEGORY_LABELS,
    DECISION_LABELS,
    KIND_LABELS,
    LIST_LIMIT,
    SECTIONS,
    SITUATION_LABELS,
    backoff_text,
    bound_label,
    count_text,
    duration,
    elide,
    id_list,
    is_code,
    role_label,
    words,
)
from sagaguard.planner.render.mermaid import render_mermaid
from sagaguard.planner.render.view import (
    ExpectationView,
    Listed,
    Rollbacks,
    checklist_by_area,
    duplicate_entry,
    expectation_view,
    findings_by_severity,
    flow_legend,
    legend_example,
    matrix_tables,
    policy_intro,
    procedure,
    reason_groups,
    rollback_intro,
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


def _codes(ids: Sequence[str], *, empty: str = "—") -> str:
    shown, more = elide(ids)
    text = id_list((_code(i) for i in shown), empty=empty)
    return f"{text} and {more} more" if more else text


def _listed(ids: Sequence[str], total: int, *, empty: str = "—") -> str:
    """The ids shown, then how many more the list holds."""
    text = id_list((_code(i) for i in ids), empty=empty)
    return f"{text} and {total - len(ids)} more" if total > len(ids) else text


def _list(listed: Listed, *, empty: str = "—") -> str:
    return _listed(listed.ids, listed.total, empty=empty)


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
    if not plan.ready:
        errors = plan.errors
        lines += [
            f"> **Not ready for production:** {count_text(errors[0].severity, len(errors))} "
            "must be fixed first.",
            ">",
            *(
                f"> - {_code(f.code)}{' on ' + _code(f.step) if f.step else ''}: "
                f"{_inline(f.message)}"
                for f in errors
            ),
            "",
        ]
    if process.description:
        lines += [f"> {_inline(process.description)}", ""]
    routes = (
        ", ".join(f"{_code(key)} → {value}" for key, value in process.alerts.items())
        or "none declared"
    )
    observability = (
        _codes([o.value for o in process.observability]) if process.observability else "none"
    )
    lines += [
        f"- **Process:** {_code(process.name)}, version {process.version}",
        f"- **Steps:** {_step_path(plan)}",
        f"- **Point of no return:** {_pivot_text(plan)}",
        f"- **State store:** {_code(process.state_store.value)}",
        f"- **Observability:** {observability}",
        f"- **Alert routes:** {routes}",
        f"- **Resubmission window:** {duration(process.resubmission_window_s)} (idempotency "
        "keys must outlive it)",
        f"- **Findings:** {_finding_counts(plan)}",
        f"- **Plan format:** {_code(plan.format)}",
        "",
        "**Contents:** " + " · ".join(f"[{t}](#{_slug(t)})" for _, t in SECTIONS),
    ]
    return lines


def _step_path(plan: Plan) -> str:
    shown = plan.steps[: 2 * LIST_LIMIT]
    more = len(plan.steps) - len(shown)
    text = " → ".join(f"**{_code(s.id)}** (pivot)" if s.pivot else _code(s.id) for s in shown)
    return f"{text} → … ({more} more)" if more else text


def _pivot_text(plan: Plan) -> str:
    if plan.pivot is None:
        return "none: every step can be undone, so every failure for good rolls back"
    return f"{_code(plan.pivot.step)}, {_inline(plan.pivot.reason)}"


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
    lines = _section("steps")
    lines += _table(
        ["#", "step", "class", "role", "changes", "idempotent", "forward action", "compensation"],
        (
            [
                str(s.position),
                _code(s.id),
                s.step_class.value,
                _role(plan, s),
                ", ".join(c.value for c in s.changes),
                s.idempotent.value,
                _cell(s.action),
                _cell(_compensation_text(s)),
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
        return f"none (irreversible); instead: {_inline(step.mitigation)}"
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
        return f"{_spec_text(step.verify)} (code bound: the engine asks it)"
    return (
        f"{_spec_text(step.verify)} (described only: no code is bound, so the engine cannot ask "
        "and a lost answer goes to a person; bind `verify: module:function`)"
    )


def _step_detail(plan: Plan, step: StepEntry) -> list[str]:
    title = f"### {step.position}. `{step.id}`"
    if step.pivot:
        title += " (the point of no return)"
    elif not step.required:
        title += " (best-effort)"
    lines = [title, ""]
    lines.append(f"- **Forward:** {_inline(step.action)}")
    if step.compensation:
        lines.append(f"- **Compensation:** {_inline(_compensation_text(step))}")
    if step.mitigation:
        lines.append(f"- **Mitigation (cannot be undone):** {_inline(step.mitigation)}")
    if not step.required:
        lines.append(
            f"- **Best-effort:** never rolls the run back; failing for good it ends failed and "
            f"a best_effort_failed alert goes to {step.alert_to}"
        )
    lines.append("- **Do not compensate:**")
    lines += [f"  - {_inline(c)}" for c in step.rollback_conditions]
    verify = _verify_line(step)
    if verify:
        lines.append(f"- **Verify the real outcome:** {verify}")
    if step.external_id:
        lines.append(f"- **External id:** {_code(step.external_id)}")
    lines.append(f"- **Lost answer settled by:** {KIND_LABELS[step.kind]}")
    lines.append(f"- **Limits:** {_limits(step)}")
    lines.append(f"- **Alerts go to:** {step.alert_to}")
    lines.append(f"- **Persist:** {_codes(step.persist)}")
    lines.append("- **Signals:**")
    for signal in step.signals:
        source = " (from the spec)" if signal.from_spec else ""
        lines.append(
            f"  - *{ANSWER_LABELS[signal.answer]}*{source}: {_inline(signal.looks_like)} → "
            f"{_inline(signal.then)}"
        )
    return lines


# --- 2. rollback sequences -------------------------------------------------------------------


def _rollback_sequences(plan: Plan) -> list[str]:
    lines = _section("rollback-sequences")
    rollbacks = Rollbacks.of(plan)
    lines += [
        rollback_intro(plan),
        "",
        *_table(
            ["failed step", "then", "compensate (latest first)", "kept", "ends as"],
            (
                [
                    _code(seq.failed_step),
                    _cell(_then(seq)),
                    _listed(rollbacks.compensated(seq), seq.compensate_count, empty="nothing"),
                    _listed(rollbacks.kept(seq), seq.keep_count, empty="—"),
                    _code(seq.final_status.value),
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
    return f"- **{label}** ({decision}): {_inline(action.instruction)}"


def _sequence_detail(plan: Plan, seq: RollbackSequence, rollbacks: Rollbacks) -> list[str]:
    lines = [f"### If `{seq.failed_step}` fails", ""]
    lines.append(_action("It failed definitely", seq.definite_failure))
    lines.append(_action("It was refused", seq.refused))
    lines.append(_action("Its outcome is unknown", seq.unknown_outcome))
    lines += ["", "Once it failed for good:", ""]
    lines += [f"{n}. {_inline(line)}" for n, line in enumerate(procedure(plan, seq, rollbacks), 1)]
    lines += ["", f"The run ends as `{seq.final_status.value}`."]
    return lines


# --- 3. rollback-failure policy --------------------------------------------------------------


def _rollback_failure_policy(plan: Plan) -> list[str]:
    lines = _section("rollback-failure-policy")
    if not plan.rollback_failure_policy:
        return [*lines, policy_intro(plan)]
    rollbacks = Rollbacks.of(plan)
    lines += [
        policy_intro(plan),
        "",
        *_table(
            ["step", "compensation", "retried", "left waiting", "alert"],
            (
                [
                    _code(p.step),
                    _cell(p.compensation),
                    bound_label(p.bound),
                    _listed(rollbacks.halted(p.step), p.halted_count, empty="nothing"),
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
            f"- **Retried:** {bound_label(policy.bound)}, backoff {backoff_text(policy.backoff)}",
            f"- **Retried when:** {_inline(policy.retry_when)}",
            f"- **Manual review when:** {_inline(policy.manual_review_when)}",
            f"- **Left completed while the run waits:** "
            f"{_listed(rollbacks.halted(policy.step), policy.halted_count, empty='nothing')}",
            f"- **Alert:** `{policy.alert_kind.value}` → {_inline(policy.alert_to)}",
        ]
    return lines


# --- 4. decision matrix ----------------------------------------------------------------------


def _decision_matrix(plan: Plan) -> list[str]:
    lines = _section("decision-matrix")
    lines += [_matrix_legend(plan), ""]
    for table in matrix_tables(plan):
        lines += [f"**{table.title}**", ""]
        lines += _table(
            ["step", *(SITUATION_LABELS[s] for s in table.situations)],
            ([_code(step), *(_matrix_cell(e) for e in row)] for step, row in table.rows),
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
            f"{_inline(duplicate.reason)}",
            "",
        ]
    lines += ["Why:", ""]
    for group in reason_groups(plan):
        entry = group.entry
        who = f"any step of {plan.process.name}" if group.everyone else _codes(group.steps)
        lines.append(
            f"- *{SITUATION_LABELS[entry.situation]}* for {who} → **{_matrix_cell(entry)}**: "
            f"{_inline(entry.reason)}"
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


# --- 5. partial-failure tests ----------------------------------------------------------------


def _tests(plan: Plan) -> list[str]:
    lines = _section("tests")
    lines += [
        "Each test injects faults at the engine's fault points and expects the final state "
        "below, derived from the rulebook: every step's status, how often its call, verify "
        "and compensation run (`×3+`: at least 3, retried for as long as a time window "
        "lasts), and the alerts.",
        "",
    ]
    lines += _table(
        ["id", "category", "step", "inject", "run ends as", "alerts"],
        (
            [
                _code(t.id),
                CATEGORY_LABELS[t.category],
                _code(t.step),
                _cell("; ".join(_injection(i) for i in t.injection)),
                _code(t.expected.run_status.value),
                _cell(_alerts_text(t)),
            ]
            for t in plan.tests
        ),
    )
    rollbacks = Rollbacks.of(plan)
    for test in plan.tests:
        lines += ["", *_test_detail(plan, test, rollbacks)]
    return lines


def _injection(injection: Injection) -> str:
    attempt = "every attempt" if injection.attempt is None else f"attempt {injection.attempt}"
    return f"{injection.fault.value} {words(injection.point.value)} {injection.step} ({attempt})"


def _alerts_text(test: PartialFailureTest) -> str:
    alerts = test.expected.alerts
    if not alerts:
        return "none"
    return "; ".join(
        f"{a.kind.value} on {a.step} → {a.route or 'no route declared'}" for a in alerts
    )


def _test_detail(plan: Plan, test: PartialFailureTest, rollbacks: Rollbacks) -> list[str]:
    expected = test.expected
    view: ExpectationView = expectation_view(plan, expected, rollbacks)
    lines = [f"### `{test.id}`: {CATEGORY_LABELS[test.category]}", "", _inline(test.scenario), ""]
    lines.append("- **Inject:** " + "; ".join(_injection(i) for i in test.injection))
    lines.append(f"- **Run ends as:** `{expected.run_status.value}`")
    lines.append(f"- **Still active:** {_list(view.active, empty='nothing')}")
    lines.append(f"- **Compensated (in order):** {_list(view.compensated, empty='nothing')}")
    lines.append(f"- **Waiting for a person:** {_list(view.waiting, empty='nothing')}")
    if view.failed.total:
        lines.append(f"- **Failed:** {_list(view.failed)}")
    if view.unknown.total:
        lines.append(f"- **Left unknown:** {_list(view.unknown)}")
    lines.append(f"- **Alerts:** {_alerts_text(test)}")
    shown, more = elide(view.calls)
    calls = "; ".join(shown) + (f"; and {more} more steps" if more else "")
    lines.append(f"- **Calls:** {calls or 'none'}")
    return lines


# --- 6. checklist ----------------------------------------------------------------------------


def _checklist(plan: Plan) -> list[str]:
    lines = _section("checklist")
    for area, items in checklist_by_area(plan):
        lines += [f"### {area.value.capitalize()}", ""]
        for item in items:
            about = f" ({_codes(item.steps)})" if item.steps else ""
            lines.append(f"- [ ] **{_inline(item.title)}**{about}: {_inline(item.detail)}")
            if item.commands:
                lines += ["", "  ```console", *(f"  {c}" for c in item.commands), "  ```", ""]
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
    lines += [
        f"The most dangerous failure of this process ({states.impact}): {_inline(states.scenario)}",
        "",
    ]
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
