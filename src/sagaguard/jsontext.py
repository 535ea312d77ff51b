"""Reading JSON text strictly: what Python's json accepts but JSON is not, refused.

Shared by the spec loader and the command line's ``--input``/``--result``, so both refuse
the same things: ``NaN`` and ``Infinity`` (the journal could not store them) and, where
asked, a key given twice in one object (the second would silently win).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NotJSONError", "loads_strict"]


class NotJSONError(ValueError):
    """Text that Python's json would read but that is not JSON."""


def loads_strict(text: str, *, unique_keys: bool = False) -> Any:
    """Parse ``text``; ``json.JSONDecodeError`` for bad syntax, ``NotJSONError`` as above."""
    hook = _unique_pairs if unique_keys else None
    return json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise NotJSONError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise NotJSONError(f"{name} is not a JSON value")
