"""Renderers: a :class:`~sagaguard.planner.plan.Plan` in, a document out (pure functions).

``render_markdown`` (the default of ``sagaguard plan``), ``render_json`` (the public
contract) and ``render_html`` (one self-contained page) only format what the plan holds;
``render(plan, fmt)`` picks one by name for the CLI. Each renderer is imported on first use
(:mod:`sagaguard.lazy`), so a Markdown plan never loads the HTML template engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from sagaguard.lazy import lazy_exports

if TYPE_CHECKING:
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


_RENDERERS = {
    Format.MARKDOWN: "sagaguard.planner.render.markdown",
    Format.JSON: "sagaguard.planner.render.json",
    Format.HTML: "sagaguard.planner.render.html",
}

__getattr__, __dir__ = lazy_exports(
    __name__, {f"render_{fmt.value}": module for fmt, module in _RENDERERS.items()}
)


def render(plan: Plan, fmt: Format | str = Format.MARKDOWN) -> str:
    """The plan in format ``fmt`` (``markdown``, ``json`` or ``html``).

    Raises ValueError for any other format name.
    """
    try:
        chosen = Format(fmt)
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise ValueError(f"unknown plan format {fmt!r} (use one of {names})") from None
    renderer: Callable[[Plan], str] = getattr(
        importlib.import_module(_RENDERERS[chosen]), f"render_{chosen.value}"
    )
    return renderer(plan)
