"""Markdown text for a rendered plan: table cells, inline code, lists of ids, tables.

Small pure helpers the Markdown renderer's sections share; each makes spec text safe where
it lands (a pipe in a cell, a backtick in inline code, a line break in a list item).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sagaguard.planner.render.expectations import Listed
from sagaguard.planner.render.labels import SECTIONS, elide, id_list, is_code

__all__ = [
    "cell",
    "code",
    "codes",
    "inline",
    "listed",
    "listed_ids",
    "section",
    "spec_text",
    "table",
]

_TITLES = dict(SECTIONS)


def cell(text: str | None) -> str:
    """Text made safe for a table cell: pipes escaped, line breaks kept as <br>."""
    if text is None or text == "":
        return "—"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def inline(text: str) -> str:
    """Text on one line: a line break from a YAML block scalar would end a list item."""
    return " ".join(text.split())


def spec_text(text: str) -> str:
    """Spec text on one line; a binding to code reads ``code: `module:function```."""
    if is_code(text):
        return f"code: {code(text)}"
    return inline(text)


def code(text: str) -> str:
    """Inline code that survives backticks inside ``text``."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def codes(ids: Sequence[str], *, empty: str = "—") -> str:
    """Step ids as inline code, the first few of a long list and how many more."""
    shown, more = elide(ids)
    text = id_list((code(i) for i in shown), empty=empty)
    return f"{text} and {more} more" if more else text


def listed_ids(ids: Sequence[str], total: int, *, empty: str = "—") -> str:
    """The ids shown, then how many more the list holds."""
    text = id_list((code(i) for i in ids), empty=empty)
    return f"{text} and {total - len(ids)} more" if total > len(ids) else text


def listed(found: Listed, *, empty: str = "—") -> str:
    """The first ids of a list and how many more it holds."""
    return listed_ids(found.ids, found.total, empty=empty)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table; the cells are already made safe."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def section(anchor: str) -> list[str]:
    """The heading that opens the part of the plan ``anchor`` names."""
    return [f"## {_TITLES[anchor]}", ""]
