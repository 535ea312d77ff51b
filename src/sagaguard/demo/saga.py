"""The demo's checkout saga, defined in code against a simulated :class:`World`.

The guide's five steps: create the order, reserve stock, charge the card (the provider's
idempotency is unknown, so an unknown outcome is verified by looking the charge up under
the idempotency key), book the delivery, send the confirmation email (irreversible, and
best-effort: its failure never rolls the order back). Every
call passes ``ctx.idempotency_key`` to its provider, as real code must. Retries back off in
milliseconds so the demo stays fast; a real process keeps the default backoff.
"""

from __future__ import annotations

from typing import Any

from sagaguard.demo.providers import World, order_total, simulated_fault
from sagaguard.engine import Applied, NotApplied, Saga, StepContext

__all__ = ["DEMO_DEFAULTS", "build_saga"]

DEMO_DEFAULTS: dict[str, Any] = {
    "timeout": "2s",
    "max_attempts": 3,
    "compensation_attempts": 3,
    "backoff_base": "10ms",
    "backoff_max": "50ms",
}
"""Short timeouts and millisecond backoff: the whole demo runs in well under three seconds."""


def build_saga(world: World) -> Saga:
    """A checkout saga whose steps act on ``world``."""
    saga = Saga(
        "checkout",
        description="Order checkout from the recovery guide, on simulated providers",
        alerts={"default": "shop-oncall", "payment": "finance"},
        defaults=DEMO_DEFAULTS,
    )

    @saga.step(changes=["database"], idempotent="yes", external_id="order_id")
    def create_order(ctx: StepContext) -> dict[str, Any]:
        """Insert the order row (status pending)."""
        return {"order_id": world.create_order(key=ctx.idempotency_key, total_cents=_total(ctx))}

    @create_order.compensate
    def cancel_order(ctx: StepContext) -> None:
        """Mark the order cancelled."""
        world.cancel_order(order_id=_ref(ctx, "order_id"))

    @saga.step(changes=["reservation"], idempotent="yes", external_id="reservation_id")
    def reserve_stock(ctx: StepContext) -> dict[str, Any]:
        """Reserve the order lines in the inventory service."""
        fault = simulated_fault(ctx, "reserve_stock")
        return {"reservation_id": world.reserve(key=ctx.idempotency_key, items=1, fault=fault)}

    @reserve_stock.compensate
    def release_stock(ctx: StepContext) -> None:
        """Release the reservation."""
        world.release(reservation_id=_ref(ctx, "reservation_id"))

    @saga.step(changes=["payment"], idempotent="unknown", external_id="payment_id")
    def charge_payment(ctx: StepContext) -> dict[str, Any]:
        """Charge the card through the payment provider."""
        fault = simulated_fault(ctx, "charge_payment")
        payment_id = world.charge(key=ctx.idempotency_key, amount_cents=_total(ctx), fault=fault)
        return {"payment_id": payment_id}

    @charge_payment.verify
    def find_charge(ctx: StepContext) -> Applied | NotApplied:
        """Look the charge up at the provider by the idempotency key."""
        fault = simulated_fault(ctx, "charge_payment.verify")
        payment_id = world.find_charge(key=ctx.idempotency_key, fault=fault)
        if payment_id is None:
            return NotApplied(f"no charge under {ctx.idempotency_key}")
        return Applied({"payment_id": payment_id})

    @charge_payment.compensate
    def refund_payment(ctx: StepContext) -> None:
        """Refund the charge in full."""
        fault = simulated_fault(ctx, "charge_payment.compensate")
        world.refund(payment_id=_ref(ctx, "payment_id"), fault=fault)

    @saga.step(changes=["external_api"], idempotent="yes", external_id="delivery_id")
    def book_delivery(ctx: StepContext) -> dict[str, Any]:
        """Create a delivery draft with the carrier."""
        fault = simulated_fault(ctx, "book_delivery")
        order_id = str(ctx.external_ids.get("create_order"))
        return {
            "delivery_id": world.book_delivery(
                key=ctx.idempotency_key, order_id=order_id, fault=fault
            )
        }

    @book_delivery.compensate
    def cancel_delivery(ctx: StepContext) -> None:
        """Cancel the delivery draft."""
        world.cancel_delivery(delivery_id=_ref(ctx, "delivery_id"))

    @saga.step(
        changes=["email"],
        idempotent="no",
        compensation="none",
        mitigation="If the order is cancelled later, send a cancellation notice",
        required=False,  # best-effort: a bounce never refunds a paid order
    )
    def send_confirmation_email(ctx: StepContext) -> dict[str, Any]:
        """Send the order confirmation email."""
        message_id = world.send_email(key=ctx.idempotency_key, to=_customer(ctx), subject="ok")
        return {"message_id": message_id}

    return saga


def _total(ctx: StepContext) -> int:
    return order_total(ctx.input)


def _customer(ctx: StepContext) -> str:
    order = ctx.input.get("order") if isinstance(ctx.input, dict) else None
    email = order.get("email") if isinstance(order, dict) else None
    return str(email or "customer@example.com")


def _ref(ctx: StepContext, field: str) -> str:
    # A compensation receives the result of the step it undoes; the external id is its key.
    if ctx.external_id:
        return ctx.external_id
    result = ctx.result if isinstance(ctx.result, dict) else {}
    return str(result.get(field))
