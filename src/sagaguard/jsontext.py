"""Reading JSON text strictly: what Python's json accepts but JSON is not, refused.

Shared by the spec loader and the command line's ``--input``/``--result``, so both refuse
the same things: ``NaN`` and ``Infinity`` and a number too large for a float (``1e999``, which
Python would read as infinity: the journal could not store it), an integer of more digits
than Python converts, and, where asked, a key given twice in one object (the second would
silently win).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["NotJSONError", "loads_strict"]


class NotJSONError(ValueError):
    """Text that Python's json would read but that is not JSON."""


def loads_strict(text: str, *, unique_keys: bool = False) -> Any:
    """Parse ``text``; ``json.JSONDecodeError`` for bad syntax, ``NotJSONError`` as above."""
    hook = _unique_pairs if unique_keys else None
    return json.loads(
        text,
        object_pairs_hook=hook,
        parse_constant=_no_constant,
        parse_float=_finite_float,
        parse_int=_integer,
    )


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise NotJSONError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise NotJSONError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJSONError(f"the number {_cut(text)} is too large (not a finite float)")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735).
        raise NotJSONError(f"the number {_cut(text)} has too many digits") from None


def _cut(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"
