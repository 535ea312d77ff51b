"""What is visibly odd about a run: a best-effort step left behind by a run that completed."""

from __future__ import annotations

import pytest
from tests.unit.journal_records import snapshot

from sagaguard.operator import Oddity, OddityKind, oddities_of
from sagaguard.operator.oddities import may_be_odd
from sagaguard.storage.base import RunStatus, StepStatus


@pytest.mark.parametrize(
    ("left", "kind"),
    [
        (StepStatus.FAILED, OddityKind.BEST_EFFORT_FAILED),
        (StepStatus.UNKNOWN, OddityKind.BEST_EFFORT_UNKNOWN),
        (StepStatus.STARTED, OddityKind.BEST_EFFORT_UNKNOWN),
    ],
)
def test_a_completed_run_with_a_step_that_did_not_complete_is_odd(
    left: StepStatus, kind: OddityKind
) -> None:
    run = snapshot(
        RunStatus.COMPLETED,
        ("charge", StepStatus.COMPLETED),
        ("send_email", left),
        ("send_sms", StepStatus.COMPLETED),
    )

    assert oddities_of(run) == (Oddity(kind, "send_email", left, None),)


def test_a_completed_run_whose_steps_all_completed_is_not_odd() -> None:
    run = snapshot(RunStatus.COMPLETED, ("charge", StepStatus.COMPLETED))

    assert oddities_of(run) == ()


@pytest.mark.parametrize("status", [s for s in RunStatus if s is not RunStatus.COMPLETED])
def test_a_step_that_failed_in_a_run_that_did_not_complete_is_told_by_the_run_s_status(
    status: RunStatus,
) -> None:
    """A rollback's failed step, or a run in review: the status itself says something is up."""
    run = snapshot(status, ("charge", StepStatus.COMPENSATED), ("ship", StepStatus.FAILED))

    assert oddities_of(run) == ()
    assert not may_be_odd(run.run)


def test_several_oddities_come_in_process_order() -> None:
    run = snapshot(
        RunStatus.COMPLETED,
        ("sms", StepStatus.UNKNOWN),
        ("charge", StepStatus.COMPLETED),
        ("email", StepStatus.FAILED),
    )

    assert [odd.step_id for odd in oddities_of(run)] == ["sms", "email"]
    assert oddities_of(run)[1].to_json() == {
        "kind": "best_effort_failed",
        "step_id": "email",
        "step_status": "failed",
        "reason": None,
    }
