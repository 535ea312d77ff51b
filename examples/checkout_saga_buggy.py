"""The checkout of :mod:`checkout_saga` with three bugs a code review easily misses.

    cd examples
    sagaguard verify checkout_saga_buggy:checkout      # exit 1: each bug is caught

1. ``reserve_stock`` is declared ``idempotent: yes`` but never sends its key, so the
   warehouse cannot recognise a retry: a lost answer reserves the stock twice.
2. ``find_charge`` looks the charge up under a key of its own making, not the one the
   charge was made with: it always says "not applied", and the card is charged again.
3. ``release_stock`` needs a ``stock_id`` the reservation never returned (it returns
   ``reservation_id``): every rollback that reaches the stock ends with a person.

Everything else is the correct saga's code, bound to the same process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from checkout_saga import ORDER, build_checkout
from shop_fakes import FakeMailer, FakePaymentProvider, FakeWarehouse

from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.testing import Subject, World


def checkout() -> Subject:
    """The buggy checkout on fresh fakes."""
    psp, warehouse, mailer = FakePaymentProvider(), FakeWarehouse(), FakeMailer()
    correct = build_checkout(psp, warehouse, mailer)

    def reserve_stock(ctx: StepContext) -> dict[str, Any]:
        # Bug 1: the key is not passed on, so every call is a new reservation.
        items = int(ctx.input["items"])
        return {"reservation_id": warehouse.reserve(items=items, idempotency_key=None)}

    def find_charge(ctx: StepContext) -> Applied | NotApplied:
        # Bug 2: the charge was made under ctx.idempotency_key, not under this.
        charge_id = psp.find_charge(idempotency_key=f"{ctx.operation_id}:charge")
        if charge_id is None:
            return NotApplied("no charge found")
        return Applied({"payment_id": charge_id})

    def release_stock(ctx: StepContext) -> None:
        # Bug 3: the step's result holds reservation_id; stock_id was never returned.
        warehouse.release(ctx.result["stock_id"])

    code = {step.id: correct.handlers(step.id) for step in correct.process.steps}
    code["reserve_stock"] = dataclasses.replace(
        code["reserve_stock"], call=reserve_stock, compensate=release_stock
    )
    code["charge_payment"] = dataclasses.replace(code["charge_payment"], verify=find_charge)
    return Subject(
        saga=Saga.binding(correct.process, code),
        world=World([psp, warehouse, mailer]),
        input=ORDER,
    )
