"""The recovery plan as one self-contained HTML page.

Inline CSS, an inline SVG of the forward and compensation paths (laid out in Python by
:mod:`~sagaguard.planner.render.diagram`, top to bottom so it fits the page), no script, no
external asset: the file can be mailed, attached to a ticket or opened offline. Every text
from the spec goes through Jinja2's autoescape, so a step called ``<script>`` is shown,
never run; text quoted in backticks becomes ``<code>``, and runbook commands are code
blocks a person copies as they are.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from sagaguard.planner.plan import FlowEdgeKind, Plan
from sagaguard.planner.render.diagram import layout
from sagaguard.planner.render.expectations import expectation_view
from sagaguard.planner.render.labels import (
    ANSWER_LABELS,
    CATEGORY_LABELS,
    DECISION_LABELS,
    KIND_LABELS,
    SECTIONS,
    SITUATION_LABELS,
    backoff_text,
    bound_label,
    count_label,
    count_text,
    duration,
    id_list,
    is_code,
    role_label,
    words,
)
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

__all__ = ["render_html"]

_TEMPLATE = "plan.html.j2"

ARROW_COLOURS: tuple[tuple[str, str], ...] = (
    ("forward", "#1f6feb"),
    ("failure", "#cf222e"),
    ("forward-recovery", "#8250df"),
    ("skipped", "#8c959f"),
    ("compensation", "#bc4c00"),
    ("unknown-outcome", "#8250df"),
    ("compensation-failed", "#cf222e"),
)
"""Arrowhead colour of each edge kind (the stylesheet colours the lines alike)."""

_LEGEND_CSS: dict[FlowEdgeKind, str] = {
    FlowEdgeKind.FORWARD: "l-forward",
    FlowEdgeKind.FAILURE: "l-failure",
    FlowEdgeKind.FORWARD_RECOVERY: "l-forward-recovery",
    FlowEdgeKind.SKIPPED: "l-skipped",
    FlowEdgeKind.COMPENSATION: "l-compensation",
    FlowEdgeKind.UNKNOWN_OUTCOME: "l-unknown",
    FlowEdgeKind.COMPENSATION_FAILED: "l-compensation-failed",
}
"""The legend's line sample of each edge kind (styled like the diagram's arrows)."""

_QUOTED = re.compile(r"`([^`]+)`")


def prose(text: object) -> Markup:
    """Plan text as HTML: escaped, with each `quoted` part shown as code (no backticks)."""
    escaped = str(escape(" ".join(str(text).split())))
    return Markup(_QUOTED.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sagaguard.planner", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = duration
    env.filters["backoff"] = backoff_text
    env.filters["bound"] = bound_label
    env.filters["times"] = count_label
    env.filters["words"] = words
    env.filters["ids"] = id_list
    env.filters["prose"] = prose
    env.globals["count_text"] = count_text
    env.tests["code"] = is_code
    env.filters["css"] = lambda value: str(value).replace("_", "-")
    return env


def render_html(plan: Plan) -> str:
    """The whole plan as one HTML document (ends with a newline)."""
    return _environment().get_template(_TEMPLATE).render(**_view(plan))


def _view(plan: Plan) -> dict[str, Any]:
    """What the template shows, grouped for display (nothing is re-derived)."""
    rollbacks = Rollbacks.of(plan)
    declared = plan.pivot.declared if plan.pivot else False
    return {
        "plan": plan,
        "sections": SECTIONS,
        "diagram": layout(plan.flow, tuple(s.id for s in plan.steps)),
        "arrow_colours": ARROW_COLOURS,
        "situation_labels": SITUATION_LABELS,
        "decision_labels": DECISION_LABELS,
        "category_labels": CATEGORY_LABELS,
        "answer_labels": ANSWER_LABELS,
        "kind_labels": KIND_LABELS,
        "roles": {
            s.id: role_label(
                s.phase,
                pivot=plan.pivot is not None,
                pivot_declared=declared,
                required=s.required,
            )
            for s in plan.steps
        },
        "matrix_tables": matrix_tables(plan),
        "duplicate": duplicate_entry(plan),
        "reasons": reason_groups(plan),
        "procedures": {
            s.failed_step: procedure(plan, s, rollbacks) for s in plan.rollback_sequences
        },
        "rollback_lists": {
            s.failed_step: (rollbacks.compensated(s), rollbacks.kept(s))
            for s in plan.rollback_sequences
        },
        "halted": {p.step: rollbacks.halted(p.step) for p in plan.rollback_failure_policy},
        "test_views": {t.id: expectation_view(plan, t.expected, rollbacks) for t in plan.tests},
        "rollback_intro": rollback_intro(plan),
        "policy_intro": policy_intro(plan),
        "legend_example": legend_example(plan),
        "flow_legend": [(_LEGEND_CSS[kind], text) for kind, text in flow_legend(plan)],
        "findings": findings_by_severity(plan),
        "severity_counts": severity_counts(plan),
        "checklist": checklist_by_area(plan),
    }
