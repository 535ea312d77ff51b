"""A verify that kills its process is bounded: its calls count, survive the crash, then a person.

The charge's answer is lost (SIGKILL after the call), so recovery asks verify. Here verify
itself dies every time, after it asked the provider and before its answer is journaled. A
verify call is committed as ``verify_called`` (counted) before it is made, so every restart
sees one more attempt, and past the bound the run goes to a person instead of verifying
forever. The charge is never made a second time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sagaguard.storage.base import RunStatus
from tests.acceptance.conftest import LATER, Shop

pytestmark = pytest.mark.slow

OP = "op-1"
MakeShop = Callable[[str], Shop]


@pytest.mark.parametrize("point", ["before_verify", "after_verify"])
def test_a_verify_that_kills_its_process_every_time_stops_at_its_bound(
    shop: MakeShop, point: str
) -> None:
    s = shop("verify")
    assert s.child("run", op=OP, crash="after_call:charge").killed
    store = s.store()
    deaths = 0
    last = None
    for restart in range(1, 12):
        before = store.load(OP).step("charge").verify_attempts
        last = s.child("recover", crash=f"{point}:charge", clock_offset=LATER * restart)
        if not last.killed:
            break
        deaths += 1
        after = store.load(OP)
        assert after.run.status is RunStatus.RUNNING, "no run is lost between crashes"
        assert after.step("charge").verify_attempts == before + 1, "each verify is counted"
    assert last is not None
    assert not last.killed, "verify was tried without a bound"
    assert last.report is not None, last.stderr
    assert last.report["status"] == [RunStatus.NEEDS_MANUAL_REVIEW.value]
    assert deaths >= 1
    final = store.load(OP)
    assert final.step("charge").verify_attempts == deaths, "the bound holds across restarts"
    charges = s.ledger.select(step_id="charge", kind="call")
    assert [c.attempt for c in charges] == [1], "the charge is never made blind again"
    assert s.violations(OP, alerts=last.alerts()) == []
