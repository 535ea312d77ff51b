"""The JSON the command line prints: ``runs list`` and ``runs show`` (``review list``'s rows
are pinned in ``test_operator_review``, with the model that makes them).

The views are :mod:`sagaguard.operator`'s; these tests pin the shape scripts depend on, key
for key and in order, so that moving the logic into the library changed no output. The one
addition is ``oddities`` (issue 6: a best-effort step that did not succeed in a completed
run must be visible).
"""

from __future__ import annotations

import json

from tests.unit.journal_records import event, run_record, snapshot

from sagaguard.cli.views import Narrator, run_view
from sagaguard.operator import RunRow
from sagaguard.operator.narration import Narrator as OperatorNarrator
from sagaguard.storage.base import RunStatus, StepStatus

ROW_KEYS = [
    "operation_id",
    "process",
    "version",
    "status",
    "reason",
    "owner",
    "lease_expires_at",
    "fencing_token",
    "created_at",
    "updated_at",
    "oddities",
]
STEP_KEYS = [
    "step_id",
    "position",
    "status",
    "attempts",
    "compensation_attempts",
    "last_attempt_at",
    "idempotency_key",
    "external_id",
    "result",
    "reason",
    "completed_seq",
]
EVENT_KEYS = ["seq", "at", "actor", "kind", "step_id", "from", "to", "reason", "data"]


def test_a_runs_list_row_has_the_keys_it_always_had_plus_oddities() -> None:
    assert list(RunRow.of(run_record()).to_json()) == ROW_KEYS


def test_runs_show_has_the_row_then_input_steps_and_events() -> None:
    run = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))

    view = run_view(run, [event(1, "run_created")])

    assert list(view) == [*ROW_KEYS, "input", "steps", "events"]
    assert list(view["steps"][0]) == STEP_KEYS
    assert list(view["events"][0]) == EVENT_KEYS
    assert list(run_view(run)) == [*ROW_KEYS, "input", "steps"]
    assert json.loads(json.dumps(view)) == view


def test_the_demo_s_narrator_is_the_operator_s() -> None:
    assert Narrator is OperatorNarrator
