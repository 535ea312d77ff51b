"""The proof and the plan in one self-contained HTML page.

The plan's own page (:func:`sagaguard.planner.render.render_html`: inline CSS and SVG, no
script) gets a first section, the proof: the verdict, the matrix by kind, every failure
with its replay command, and every scenario's faults, expected end and observed end. Text
goes through Jinja2's autoescape, so a hostile step id is shown, never run.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from sagaguard.planner.render import render_html as render_plan_html
from sagaguard.testing.harness import Report
from sagaguard.testing.report import KIND_LABELS, describe_faults, kind_rows

__all__ = ["render_html"]


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("sagaguard.testing", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: Report) -> str:
    """One page: the proof first, then the recovery plan it proves."""
    proof = (
        _environment()
        .get_template("proof.html.j2")
        .render(
            report=report,
            rows=kind_rows(report),
            failed=report.failed,
            kinds=KIND_LABELS,
            faults=describe_faults,
        )
    )
    page = render_plan_html(report.plan)
    name = Markup.escape(report.plan.process.name)
    page = page.replace(
        f"<title>Recovery plan: {name}</title>",
        f"<title>Proof and recovery plan: {name}</title>",
        1,
    )
    marker = "<main>"
    at = page.find(marker)
    if at < 0:  # a plan page without <main>: the proof goes first in the body
        marker = "<body>"
        at = page.find(marker)
    at += len(marker)
    return page[:at] + "\n" + proof + page[at:]
