"""A journal's payloads as JSON: one encoder, one error, one digest of a run's input.

Every payload a store keeps (inputs, results, event data, alerts) goes through
:func:`dumps`, which refuses what no journal can hold as one
:class:`~sagaguard.exceptions.PayloadError`, and comes back through :func:`loads`. Payloads
are never pickled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sagaguard.exceptions import PayloadError

__all__ = ["EncodedJSON", "JSONValue", "dumps", "input_hash", "loads"]

_SURROGATE = re.compile("[\ud800-\udfff]")

JSONValue = Any
"""A value that survives ``json.dumps``/``json.loads`` unchanged (payloads are never pickled)."""


def input_hash(value: JSONValue) -> str:
    """A stable digest of a run's input, to tell a duplicate request from a conflicting one.

    Raises :class:`~sagaguard.exceptions.PayloadError` for an input that is not JSON.
    """
    canonical = _encode(value, "input", sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def dumps(value: JSONValue, *, what: str = "payload") -> str:
    """Serialize a payload as JSON, or raise ``PayloadError`` naming what cannot be stored.

    ``PayloadError`` is a ``StoreError``. Too deep a value (a ``RecursionError`` inside the
    encoder) and text no database can hold (lone surrogates) are refused the same way, so a
    caller has one error to catch and send the value to a person.
    """
    return _encode(value, what)


def _encode(value: JSONValue, what: str, *, sort_keys: bool = False) -> str:
    try:
        text = json.dumps(
            value,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            sort_keys=sort_keys,
        )
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply to store as JSON") from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} is not JSON-serializable: {exc}") from exc
    if _SURROGATE.search(text):
        raise PayloadError(f"{what} holds a lone surrogate, which no journal can store")
    return text


@dataclass(frozen=True, slots=True)
class EncodedJSON:
    """A payload encoded once: its JSON text, and the value every reader decodes from it.

    Give one as a :class:`StepChange` ``result`` and the store writes ``text`` as it is
    instead of encoding the value again; ``value`` is what a resumed run will read (tuples
    become lists, int keys strings), so the caller can hand it on at once.
    """

    text: str
    value: JSONValue

    @classmethod
    def of(cls, value: JSONValue, *, what: str = "payload") -> EncodedJSON:
        """Encode ``value`` (``PayloadError`` if it is not storable JSON) and decode it back."""
        text = dumps(value, what=what)
        return cls(text, json.loads(text))


def loads(text: str | None) -> JSONValue:
    """Deserialize a JSON payload stored by :func:`dumps` (``None`` stays ``None``)."""
    return None if text is None else json.loads(text)
