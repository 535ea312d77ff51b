"""replace_step: the fast path every staged step change takes gives replace()'s record."""

from __future__ import annotations

import dataclasses

import pytest

from sagaguard.storage.base import StepRecord, replace_step
from sagaguard.vocabulary import StepStatus

RECORD = StepRecord(
    "op", "charge", 0, StepStatus.PENDING, 0, None, "op:charge", None, None, None, 0, None
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"status": StepStatus.STARTED, "attempts": 1, "first_attempt_at": 5.0},
        {"result": {"id": "p-1"}, "completed_seq": 1, "kept": True},
        {"compensation_first_at": 9.0, "verify_attempts": 2, "external_id_field": "id"},
    ],
)
def test_replace_step_gives_what_dataclasses_replace_gives(changes: dict[str, object]) -> None:
    assert replace_step(RECORD, changes) == dataclasses.replace(RECORD, **changes)


def test_replace_step_refuses_a_field_a_step_record_does_not_have() -> None:
    with pytest.raises(TypeError, match=r"^StepRecord has no field 'colour'$"):
        replace_step(RECORD, {"colour": "red"})
