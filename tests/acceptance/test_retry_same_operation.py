"""A client retries with the same operation_id in a new process after a partial success.

The first process charged and died. A retry while its lease is live returns the existing run
and calls nothing; a retry after the lease expired resumes that same run, calling only the
steps that never completed; a retry after the run finished returns it unchanged. Never a
second run, never a second side effect.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sagaguard.storage.base import RunStatus, StepStatus
from tests.acceptance.conftest import LATER, Shop
from tests.acceptance.shop import KINDS

pytestmark = pytest.mark.slow

OP = "order-1042"
INPUT = {"cart": ["sku-1", "sku-2"], "amount": 4200}
MakeShop = Callable[[str], Shop]


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_partial_success_continues_the_same_run_without_new_side_effects(
    shop: MakeShop, kind: str
) -> None:
    s = shop(kind)
    died = s.child("run", op=OP, input=INPUT, crash="after_commit:charge")
    assert died.killed, died.stderr
    store = s.store()
    partial = store.load(OP)
    assert [r.status for r in partial.steps][:2] == [StepStatus.COMPLETED] * 2
    done_before = s.ledger.entries()
    assert [e.step_id for e in done_before] == ["reserve", "charge"]

    early = s.child("run", op=OP, input=INPUT)
    assert early.report is not None, early.stderr
    assert early.report["status"] == RunStatus.RUNNING.value, "the existing run, as it stands"
    assert s.ledger.entries() == done_before, "a retry during the owner's lease calls nothing"

    late = s.child("run", op=OP, input=INPUT, clock_offset=LATER)
    assert late.report is not None, late.stderr
    assert late.report["status"] == RunStatus.COMPLETED.value
    new_calls = [e for e in s.ledger.entries() if e.pid == late.report["pid"]]
    assert [(e.step_id, e.kind.value) for e in new_calls] == [("ship", "call")], (
        "only the step that never completed is called"
    )

    again = s.child("run", op=OP, input=INPUT, clock_offset=2 * LATER)
    assert again.report is not None, again.stderr
    assert again.report["status"] == RunStatus.COMPLETED.value
    assert [e for e in s.ledger.entries() if e.pid == again.report["pid"]] == []

    runs = store.list_runs()
    assert [r.operation_id for r in runs] == [OP], "one operation_id, one run"
    assert [e.kind for e in store.events(OP)].count("run_created") == 1
    assert s.violations(OP) == []
