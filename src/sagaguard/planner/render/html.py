"""The recovery plan as one self-contained HTML page.

Inline CSS, an inline SVG of the forward and compensation paths (laid out in Python by
:mod:`~sagaguard.planner.render.diagram`), no script, no external asset: the file can be
mailed, attached to a ticket or opened offline. Every text from the spec goes through
Jinja2's autoescape, so a step called ``<script>`` is shown, never run.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sagaguard.planner.plan import FlowEdgeKind, Plan
from sagaguard.planner.render.diagram import layout
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

__all__ = ["render_html"]

_TEMPLATE = "plan.html.j2"

ARROW_COLOURS: tuple[tuple[str, str], ...] = (
    ("forward", "#1f6feb"),
    ("failure", "#cf222e"),
    ("compensation", "#bc4c00"),
    ("unknown-outcome", "#8250df"),
    ("compensation-failed", "#cf222e"),
)
"""Arrowhead colour of each edge kind (the stylesheet colours the lines alike)."""


_LEGEND_CSS: dict[FlowEdgeKind, str] = {
    FlowEdgeKind.FORWARD: "l-forward",
    FlowEdgeKind.FAILURE: "l-failure",
    FlowEdgeKind.COMPENSATION: "l-compensation",
    FlowEdgeKind.UNKNOWN_OUTCOME: "l-unknown",
    FlowEdgeKind.COMPENSATION_FAILED: "l-compensation-failed",
}
"""The legend's line sample of each edge kind (styled like the diagram's arrows)."""


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
    env.filters["words"] = words
    env.filters["ids"] = id_list
    env.globals["count_text"] = count_text
    env.tests["code"] = is_code
    env.filters["css"] = lambda value: str(value).replace("_", "-")
    return env


def render_html(plan: Plan) -> str:
    """The whole plan as one HTML document (ends with a newline)."""
    return _environment().get_template(_TEMPLATE).render(**_view(plan))


def _view(plan: Plan) -> dict[str, Any]:
    """What the template shows, grouped for display (nothing is re-derived)."""
    return {
        "plan": plan,
        "sections": SECTIONS,
        "diagram": layout(plan.flow, tuple(s.id for s in plan.steps)),
        "arrow_colours": ARROW_COLOURS,
        "situations": situations(plan),
        "situation_labels": SITUATION_LABELS,
        "decision_labels": DECISION_LABELS,
        "category_labels": CATEGORY_LABELS,
        "matrix": decision_grid(plan),
        "reasons": [(g, reason_scope(plan, g)) for g in reason_groups(plan)],
        "rollback_intro": rollback_intro(plan),
        "policy_intro": policy_intro(plan),
        "legend_example": legend_example(plan),
        "flow_legend": [(_LEGEND_CSS[kind], text) for kind, text in flow_legend(plan)],
        "findings": findings_by_severity(plan),
        "severity_counts": severity_counts(plan),
        "checklist": checklist_by_area(plan),
    }
