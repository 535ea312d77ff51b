"""An alert outlives the process that raised it: SIGKILL between its commit and its delivery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sagaguard.engine import AlertKind, RecordingNotifier
from sagaguard.storage.base import RunStatus
from tests.acceptance.conftest import LATER, Shop

pytestmark = pytest.mark.slow

OP = "op-1"


def test_a_review_alert_whose_raiser_was_killed_is_delivered_once_by_a_worker(
    shop: Callable[[str], Shop],
) -> None:
    s = shop("noverify")
    # First death: after the charge, before its result was saved (the outcome is unknown).
    assert s.child("run", op=OP, crash="after_call:charge").killed
    # Second death: the recovering process sends the run to review and dies as it alerts.
    died = s.child("recover", clock_offset=LATER, die_on_alert=True)
    assert died.killed, f"rc={died.returncode} {died.stderr}"
    store = s.store()
    assert store.load(OP).run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert "alert_delivered" not in [e.kind for e in store.events(OP)]

    notifier = RecordingNotifier()
    with s.engine(notifier=notifier, clock_offset=2 * LATER) as worker:
        assert worker.deliver_alerts() == 1
        assert worker.deliver_alerts() == 0, "delivered once, not again"

    assert [(a.kind, a.operation_id, a.step_id, a.route) for a in notifier.alerts] == [
        (AlertKind.NEEDS_MANUAL_REVIEW, OP, "charge", "finance")
    ]
    assert [e.kind for e in store.events(OP)][-1] == "alert_delivered"
    assert len(s.ledger.select(step_id="charge", kind="call")) == 1, "no second charge"
    assert s.violations(OP, alerts=notifier.alerts) == []
