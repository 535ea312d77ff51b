"""The shop under test: a checkout saga whose external systems are a file ledger.

Every external call is first written (and fsynced) to a :class:`FileLedger`; the ledger is
also what the payment provider "knows": verify finds a charge when a call with its
idempotency key is in the ledger. Step and verify results carry the caller's fencing token,
so the journal shows whose result was kept when two owners raced.

The charge step comes in three kinds, the crash matrix's columns:
``verify`` (not idempotent, can be verified), ``noverify`` (not idempotent, cannot) and
``idempotent`` (the provider deduplicates by key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sagaguard import StepFailed
from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.testing import Ledger, LedgerKind

KINDS = ("verify", "noverify", "idempotent")
STEPS = ("reserve", "charge", "ship")

Hook = Callable[[StepContext], None]


def build(kind: str, ledger: Ledger, *, charge_hook: Hook | None = None) -> Saga:
    """The checkout saga with a charge step of ``kind``; ``charge_hook`` runs inside the charge.

    Input options: ``ship_fails`` (delivery refuses every attempt, so the run rolls back) and
    ``charge_delay`` (seconds the charge takes, to widen races).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    saga = Saga(
        f"shop_{kind}",
        alerts={"default": "shop-oncall", "payment": "finance"},
        defaults={"timeout": 5, "backoff_base": 0.001, "backoff_max": 0.01},
    )

    @saga.step(changes=["reservation"], idempotent="yes", external_id="reservation_id")
    def reserve(ctx: StepContext) -> dict[str, Any]:
        ledger.record(ctx, LedgerKind.CALL)
        return {"reservation_id": f"res-{ctx.operation_id}", "token": ctx.fencing_token}

    @reserve.compensate
    def release(ctx: StepContext) -> None:
        """Release the reserved stock"""
        ledger.record(ctx, LedgerKind.COMPENSATE)

    @saga.step(
        changes=["payment"],
        idempotent="yes" if kind == "idempotent" else "no",
        external_id="payment_id",
    )
    def charge(ctx: StepContext) -> dict[str, Any]:
        ledger.record(ctx, LedgerKind.CALL)
        if charge_hook is not None:
            charge_hook(ctx)
        delay = (ctx.input or {}).get("charge_delay")
        if delay:
            time.sleep(float(delay))
        return {"payment_id": f"pay-{ctx.idempotency_key}", "token": ctx.fencing_token}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge"""
        ledger.record(ctx, LedgerKind.COMPENSATE)

    if kind == "verify":

        @charge.verify
        def find_charge(ctx: StepContext) -> Applied | NotApplied:
            """Look the charge up at the provider by its idempotency key"""
            ledger.record(ctx, LedgerKind.VERIFY)
            made = ledger.select(kind=LedgerKind.CALL, idempotency_key=ctx.idempotency_key)
            if not made:
                return NotApplied("the provider has no charge under that key")
            return Applied(
                {
                    "payment_id": f"pay-{ctx.idempotency_key}",
                    "token": ctx.fencing_token,
                    "charged_by": made[0].fencing_token,
                }
            )

    @saga.step(changes=["external_api"], idempotent="yes", external_id="delivery_id")
    def ship(ctx: StepContext) -> dict[str, Any]:
        ledger.record(ctx, LedgerKind.CALL)
        if (ctx.input or {}).get("ship_fails"):
            raise StepFailed("no courier available")
        return {"delivery_id": f"del-{ctx.operation_id}", "token": ctx.fencing_token}

    @ship.compensate
    def cancel_delivery(ctx: StepContext) -> None:
        """Cancel the delivery"""
        ledger.record(ctx, LedgerKind.COMPENSATE)

    return saga
