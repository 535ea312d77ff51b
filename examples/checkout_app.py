"""The code behind ``checkout_runnable.yaml``: one function per step, compensation and verify.

``sagaguard run examples/checkout_runnable.yaml --operation-id order-1 --input order.json``
imports these functions by the import paths the spec names (the spec's folder is put on
``sys.path``). Each receives a :class:`~sagaguard.engine.StepContext` and passes
``ctx.idempotency_key`` to its provider, so a retry, a crash or a second worker is recognised
on the other side. A step returns its result (JSON, journaled with its external id);
``StepFailed`` says "refused, nothing changed" (safe to retry); any other exception or a
timeout means the outcome is unknown, which the engine settles with ``find_charge``.

The providers here are simulated (:class:`sagaguard.demo.providers.World`): they append
every effect to a ledger file, ``$CHECKOUT_LEDGER`` (default ``checkout-ledger.jsonl`` in
the working directory), which every process shares. Replace ``_world()`` with your real
clients. To try a failure, name it in the input under ``simulate`` (a string for every
attempt, a list for attempt 1, 2, ...):

    {"order": {"total_cents": 4990, "email": "ada@example.com"},
     "simulate": {"charge_payment": ["answer_lost"]}}

``reserve_stock``: out_of_stock; ``charge_payment``: declined, answer_lost, no_answer;
``charge_payment.verify``: down; ``charge_payment.compensate``: refused;
``book_delivery``: carrier_down.
"""

from __future__ import annotations

import os
from typing import Any

from sagaguard.demo.providers import World, order_total, simulated_fault
from sagaguard.engine import Applied, NotApplied, StepContext

LEDGER_ENV = "CHECKOUT_LEDGER"


def _world() -> World:
    return World(ledger_path=os.environ.get(LEDGER_ENV, "checkout-ledger.jsonl"))


def _undo_ref(ctx: StepContext, field: str) -> str:
    # A compensation receives the journaled result of the step it undoes.
    if ctx.external_id:
        return ctx.external_id
    result = ctx.result if isinstance(ctx.result, dict) else {}
    return str(result[field])


def create_order(ctx: StepContext) -> dict[str, Any]:
    """Insert the order row; the idempotency key is a unique column."""
    order_id = _world().create_order(key=ctx.idempotency_key, total_cents=order_total(ctx.input))
    return {"order_id": order_id}


def cancel_order(ctx: StepContext) -> None:
    """Mark the order cancelled."""
    _world().cancel_order(order_id=_undo_ref(ctx, "order_id"))


def reserve_stock(ctx: StepContext) -> dict[str, Any]:
    """Reserve the order lines; the inventory API deduplicates on the key."""
    fault = simulated_fault(ctx, "reserve_stock")
    return {"reservation_id": _world().reserve(key=ctx.idempotency_key, items=1, fault=fault)}


def release_stock(ctx: StepContext) -> None:
    """Release the reservation."""
    _world().release(reservation_id=_undo_ref(ctx, "reservation_id"))


def charge_payment(ctx: StepContext) -> dict[str, Any]:
    """Charge the card. The provider does not deduplicate: never repeat this blind."""
    fault = simulated_fault(ctx, "charge_payment")
    amount = order_total(ctx.input)
    payment_id = _world().charge(key=ctx.idempotency_key, amount_cents=amount, fault=fault)
    return {"payment_id": payment_id}


def find_charge(ctx: StepContext) -> Applied | NotApplied:
    """Look the charge up by the idempotency key the charge was made with."""
    fault = simulated_fault(ctx, "charge_payment.verify")
    payment_id = _world().find_charge(key=ctx.idempotency_key, fault=fault)
    if payment_id is None:
        return NotApplied(f"no charge under {ctx.idempotency_key}")
    return Applied({"payment_id": payment_id})


def refund_payment(ctx: StepContext) -> None:
    """Refund the charge in full."""
    fault = simulated_fault(ctx, "charge_payment.compensate")
    _world().refund(payment_id=_undo_ref(ctx, "payment_id"), fault=fault)


def book_delivery(ctx: StepContext) -> dict[str, Any]:
    """Create a delivery draft; the carrier deduplicates on the key."""
    fault = simulated_fault(ctx, "book_delivery")
    order_id = str(ctx.external_ids.get("create_order"))
    delivery_id = _world().book_delivery(key=ctx.idempotency_key, order_id=order_id, fault=fault)
    return {"delivery_id": delivery_id}


def cancel_delivery(ctx: StepContext) -> None:
    """Cancel the delivery draft."""
    _world().cancel_delivery(delivery_id=_undo_ref(ctx, "delivery_id"))


def send_confirmation_email(ctx: StepContext) -> dict[str, Any]:
    """Send the confirmation email (cannot be unsent)."""
    order = ctx.input.get("order", {}) if isinstance(ctx.input, dict) else {}
    to = str(order.get("email", "customer@example.com"))
    return {"message_id": _world().send_email(key=ctx.idempotency_key, to=to, subject="confirmed")}
