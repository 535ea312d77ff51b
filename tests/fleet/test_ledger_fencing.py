"""The fleet's fake providers refuse a call under a lower fencing token than one they saw.

That is what the README asks of a real provider: a worker frozen inside a call that wakes
after another worker took its run over must not apply the call a second time.
"""

from __future__ import annotations

from sagaguard.engine import StepContext
from sagaguard.testing.ledger import LedgerKind
from tests.fleet.conftest import Fleet


def _ctx(token: int, attempt: int) -> StepContext:
    return StepContext(
        operation_id="order-1",
        step_id="charge",
        attempt=attempt,
        idempotency_key="order-1:charge",
        fencing_token=token,
        input=None,
        results={},
        external_ids={},
    )


def test_a_call_under_a_stale_token_is_refused_after_a_newer_one(fleet: Fleet) -> None:
    ledger = fleet.ledger
    assert ledger.record_effect(_ctx(2, 2), LedgerKind.CALL, applies=True, dedupe=False)
    # The frozen owner's call (token 1) arrives last: refused, nothing applied twice.
    assert not ledger.record_effect(_ctx(1, 1), LedgerKind.CALL, applies=True, dedupe=False)
    # The newer owner may call again: no dedupe, so a repeat under its token applies.
    assert ledger.record_effect(_ctx(2, 3), LedgerKind.CALL, applies=True, dedupe=False)
    assert ledger.effects() == [("order-1", "charge", "call", 2)]
