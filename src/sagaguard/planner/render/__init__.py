"""Renderers: a :class:`~sagaguard.planner.plan.Plan` in, a document out (pure functions).

``render_markdown`` (the default of ``sagaguard plan``), ``render_json`` (the public
contract) and ``render_html`` (one self-contained page) only format what the plan holds;
``render(plan, fmt)`` picks one by name for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from sagaguard.planner.plan import Plan
from sagaguard.planner.render.html import render_html
from sagaguard.planner.render.json import render_json
from sagaguard.planner.render.markdown import render_markdown

__all__ = ["Format", "render", "render_html", "render_json", "render_markdown"]


class Format(StrEnum):
    """Output formats of a plan."""

    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


_RENDERERS: dict[Format, Callable[[Plan], str]] = {
    Format.MARKDOWN: render_markdown,
    Format.JSON: render_json,
    Format.HTML: render_html,
}


def render(plan: Plan, fmt: Format | str = Format.MARKDOWN) -> str:
    """The plan in format ``fmt`` (``markdown``, ``json`` or ``html``).

    Raises ValueError for any other format name.
    """
    try:
        chosen = Format(fmt)
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise ValueError(f"unknown plan format {fmt!r} (use one of {names})") from None
    return _RENDERERS[chosen](plan)
