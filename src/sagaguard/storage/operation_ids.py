"""Which operation ids the journal accepts for a new run, and which it looks runs up by.

A new run's id is checked (:func:`check_operation_id`): 1..200 characters of printable
text. Looking a run up (load, events, claim) refuses nothing a journal may already hold
(:func:`lookup_id`): an older version stored ids that the check now refuses, and those runs
must stay readable, resolvable and recoverable. Every store follows these rules alike
(:mod:`sagaguard.storage.journal` names them with the journal's other rules). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sagaguard.exceptions import InvalidOperationIdError, RunNotFoundError

__all__ = ["MAX_OPERATION_ID_LENGTH", "check_operation_id", "lookup_id", "lookup_ids"]

MAX_OPERATION_ID_LENGTH = 200
"""Longest operation id the journal accepts, in characters (ids are 1..200 characters)."""

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Control characters, line and paragraph separators, and lone surrogates (not encodable)."""


def check_operation_id(operation_id: object) -> str:
    """The id itself, or ``InvalidOperationIdError`` naming what is wrong with it.

    An operation id is 1..200 characters of printable text: no control characters (they
    would spoof terminal output and audit lines), no line separators, no lone surrogates
    (no database can store them). Every store checks it the same way, when it creates a
    run; looking a run up takes any id the journal may already hold (:func:`lookup_id`).
    """
    if not isinstance(operation_id, str):
        raise InvalidOperationIdError(
            f"operation_id must be a string, not {type(operation_id).__name__}"
        )
    if not operation_id:
        raise InvalidOperationIdError("operation_id must not be empty")
    if len(operation_id) > MAX_OPERATION_ID_LENGTH:
        raise InvalidOperationIdError(
            f"operation_id is {len(operation_id)} characters long; "
            f"at most {MAX_OPERATION_ID_LENGTH} are allowed"
        )
    bad = _UNPRINTABLE.search(operation_id)
    if bad is not None:
        code = ord(bad.group())
        what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
        raise InvalidOperationIdError(
            f"operation_id holds {what} (U+{code:04X}) at position {bad.start()}"
        )
    return operation_id


def lookup_id(operation_id: object) -> str:
    """The id of a run to look up (load, events, claim), or the error a lookup gives.

    Only a new run's id is checked (:func:`check_operation_id`, at create): a journal an
    older version wrote may hold ids that check now refuses (control characters, any
    length), and those runs must stay readable, resolvable and recoverable, so a lookup
    refuses nothing the journal may hold. An id no journal can hold at all (one with a lone
    surrogate, which no database encodes) is a run that does not exist:
    ``RunNotFoundError`` on every store alike, never a driver's encoding error.
    """
    if not isinstance(operation_id, str):
        raise InvalidOperationIdError(
            f"operation_id must be a string, not {type(operation_id).__name__}"
        )
    if _SURROGATE.search(operation_id):
        raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
    return operation_id


def lookup_ids(operation_ids: Iterable[object]) -> tuple[str, ...]:
    """The ids of runs to look up together, each once, in the order given.

    As :func:`lookup_id`, except that an id no journal can hold is left out: it names no run.
    """
    wanted: dict[str, None] = {}
    for operation_id in operation_ids:
        try:
            wanted[lookup_id(operation_id)] = None
        except RunNotFoundError:
            continue
    return tuple(wanted)


_SURROGATE = re.compile("[\ud800-\udfff]")
