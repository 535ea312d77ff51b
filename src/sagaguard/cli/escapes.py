"""Journal text made safe to print: no control character or terminal escape reaches the screen.

An operation id, a reviewer's ``--by`` or ``--note``, a step's failure reason: the journal
holds whatever a caller or a step wrote, and printing it raw lets it move the cursor, clear
the screen, recolour the table or fake an audit line (``\\n`` then a made-up event). Every
place the command line prints journal text goes through :func:`printable` (terminal) or
:func:`json_text` (``--json``); error lines go through :func:`printable` too.

Characters are escaped the way Python writes them in a string (``\\x1b``, ``\\u202e``), so
the text stays readable and a person can tell what was there.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_text", "printable", "printable_view"]


def printable(text: object) -> str:
    """``text`` with every non-printable character (controls, bidi overrides) escaped."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in value)


def printable_view(view: dict[str, Any]) -> dict[str, Any]:
    """A view dict (:mod:`sagaguard.cli.views`) whose texts are :func:`printable`.

    Its strings and the strings of its rows (a run's steps, its events) are escaped; JSON
    payloads (input, results, event data) are left as they are: tables do not show them.
    """
    return {key: _field(value) for key, value in view.items()}


def _field(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [
            printable_view(item)
            if isinstance(item, dict)
            else printable(item)
            if isinstance(item, str)
            else item
            for item in value
        ]
    return value


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def json_text(value: Any) -> str:
    """``value`` as indented JSON (UTF-8 text) in which no raw control character is left.

    ``json.dumps`` escapes the C0 controls only; DEL, the C1 controls (``\\x9b`` starts a
    terminal sequence too), bidi overrides and lone surrogates are escaped here as
    ``\\uXXXX``, which any JSON reader turns back into the same string.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escaped(ch) for ch in text)


def _json_escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    # Outside the BMP, JSON writes a UTF-16 surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
