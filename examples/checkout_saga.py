"""The checkout as code, proved against fakes of its providers: ``sagaguard verify``.

    cd examples
    sagaguard verify checkout_saga:checkout          # every partial failure of the plan, proved
    sagaguard plan checkout_saga:saga                # the recovery plan of the same saga

``build_checkout`` wires the steps to whatever clients it is given (the real ones in
production); ``checkout()`` gives it fresh fakes (:mod:`shop_fakes`) and is what
``sagaguard verify`` calls, once per scenario, so each scenario's fakes hold only its own
run's effects. Every call passes ``ctx.idempotency_key``; the charge, whose provider does
not deduplicate, is never repeated blind: a lost answer is looked up with ``find_charge``.
"""

from __future__ import annotations

from typing import Any

from shop_fakes import FakeMailer, FakePaymentProvider, FakeWarehouse

from sagaguard import StepFailed
from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.testing import Subject, World

ORDER = {"items": 2, "total_cents": 4990, "email": "ada@example.com"}


def build_checkout(psp: FakePaymentProvider, warehouse: FakeWarehouse, mailer: FakeMailer) -> Saga:
    """The checkout saga, its steps calling these three providers."""
    saga = Saga(
        "checkout",
        alerts={"default": "shop-oncall", "payment": "finance"},
        defaults={"timeout": "10s", "backoff_base": "50ms", "backoff_max": "1s"},
    )

    @saga.step(changes=["reservation"], idempotent="yes", external_id="reservation_id")
    def reserve_stock(ctx: StepContext) -> dict[str, Any]:
        """Reserve the order's items; the warehouse deduplicates on the key."""
        items = int(ctx.input["items"])
        return {"reservation_id": warehouse.reserve(items=items, idempotency_key=ctx.idempotency_key)}

    @reserve_stock.compensate
    def release_stock(ctx: StepContext) -> None:
        """Release the reservation by reservation_id."""
        warehouse.release(str(ctx.external_id))

    @saga.step(changes=["payment"], idempotent="unknown", external_id="payment_id")
    def charge_payment(ctx: StepContext) -> dict[str, Any]:
        """Charge the card; the provider does not deduplicate, so never repeat this blind."""
        total = int(ctx.input["total_cents"])
        if total <= 0:
            raise StepFailed(f"nothing to charge: {total} cents", retry=False)
        charge_id = psp.charge(
            amount_cents=total,
            idempotency_key=ctx.idempotency_key,
            fencing_token=ctx.fencing_token,
        )
        return {"payment_id": charge_id}

    @charge_payment.verify
    def find_charge(ctx: StepContext) -> Applied | NotApplied:
        """Look the charge up by the idempotency key it was made with."""
        charge_id = psp.find_charge(idempotency_key=ctx.idempotency_key)
        if charge_id is None:
            return NotApplied(f"no charge under {ctx.idempotency_key}")
        return Applied({"payment_id": charge_id})

    @charge_payment.compensate
    def refund_payment(ctx: StepContext) -> None:
        """Refund the charge in full by payment_id."""
        psp.refund(str(ctx.external_id))

    @saga.step(
        changes=["email"],
        idempotent="no",
        compensation="none",
        required=False,
        mitigation="If the order is cancelled later, send a cancellation notice",
    )
    def send_confirmation_email(ctx: StepContext) -> dict[str, Any]:
        """Send the order confirmation (best-effort: a bounce never refunds the order)."""
        message_id = mailer.send(
            to=str(ctx.input["email"]), subject="Order confirmed", idempotency_key=ctx.idempotency_key
        )
        return {"message_id": message_id}

    return saga


def checkout() -> Subject:
    """The saga on fresh fakes, with an order to run: what ``sagaguard verify`` proves."""
    psp, warehouse, mailer = FakePaymentProvider(), FakeWarehouse(), FakeMailer()
    return Subject(
        saga=build_checkout(psp, warehouse, mailer),
        world=World([psp, warehouse, mailer]),
        input=ORDER,
    )


saga = build_checkout(FakePaymentProvider(), FakeWarehouse(), FakeMailer())
"""For ``sagaguard plan checkout_saga:saga``."""
