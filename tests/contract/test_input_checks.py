"""What every store refuses at the door, the same way: bad operation ids, input that is not JSON.

Each refusal is a ``SagaGuardError`` that names the problem, raised before anything is
written, identical on every backend (a raw ``UnicodeEncodeError`` on one store and silent
acceptance on another would make the same call mean two things).
"""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.exceptions import InvalidOperationIdError, PayloadError, RunNotFoundError
from sagaguard.storage import JournalStore
from sagaguard.storage.journal import MAX_OPERATION_ID_LENGTH

from .helpers import LEASE, T0, new_run


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("operation_id", "problem"),
    [
        ("", "empty"),
        ("x" * (MAX_OPERATION_ID_LENGTH + 1), "201 characters"),
        ("order-\ud800-17", "lone surrogate"),
        ("order\x1b[2J", "control character"),
        ("order\n17", "control character"),
        ("order\u2028\u2029", "control character"),
    ],
    ids=["empty", "too_long", "lone_surrogate", "escape", "newline", "line_separator"],
)
def test_an_operation_id_the_journal_cannot_hold_is_refused_alike_everywhere(
    store: JournalStore, operation_id: str, problem: str
) -> None:
    with pytest.raises(InvalidOperationIdError, match=problem):
        store.create_run(new_run(operation_id), owner="w", now=T0, lease_s=LEASE)
    with pytest.raises(InvalidOperationIdError, match=problem):
        store.load(operation_id)

    assert store.list_runs() == []


def test_the_longest_allowed_operation_id_and_any_printable_text_are_accepted(
    store: JournalStore,
) -> None:
    longest = "é" * MAX_OPERATION_ID_LENGTH
    for operation_id in (longest, "order 17 / Zoë 🚀", "a"):
        assert store.create_run(new_run(operation_id), owner="w", now=T0, lease_s=LEASE).created
        assert store.load(operation_id).run.operation_id == operation_id


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"when": object()}, "object is not JSON serializable"),
        ({"tags": {"a", "b"}}, "set is not JSON serializable"),
        ({"raw": b"\x00\x01"}, "bytes is not JSON serializable"),
        (_deep(3_000), "nested too deeply"),
        ({"name": "Zo\udc00"}, "lone surrogate"),
        ({"ratio": float("nan")}, "Out of range float"),
    ],
    ids=["object", "set", "bytes", "3000_levels_deep", "lone_surrogate", "nan"],
)
def test_input_that_is_not_json_is_refused_by_name_and_nothing_is_created(
    store: JournalStore, payload: Any, problem: str
) -> None:
    with pytest.raises(PayloadError, match=f"^input .*{problem}"):
        store.create_run(new_run(input=payload), owner="w", now=T0, lease_s=LEASE)

    with pytest.raises(RunNotFoundError):
        store.load("op-1")
    assert store.list_runs() == []
