"""A checkout saga wired to a scriptable fake provider that records every external call."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from sagaguard import StepFailed
from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.testing import FakeClock

__all__ = ["CHECKOUT_STEPS", "Entry", "FakeClock", "Provider", "checkout"]


@dataclass(frozen=True)
class Entry:
    """One external call as the provider saw it."""

    step_id: str
    kind: str  # call | compensate | verify
    key: str
    attempt: int


@dataclass
class Provider:
    """Plays every external system of the checkout.

    ``script[step_id]`` is a queue of behaviours for the next forward calls of that step:
    ``ok``, ``fail`` (StepFailed), ``refuse`` (StepFailed that says a repeat is pointless),
    ``timeout_applied`` (the effect happens, the answer is lost), ``timeout_lost`` (no effect,
    no answer), ``error`` (unknown outcome, no effect). The same for ``comp_script`` and
    compensations (``ok``, ``fail``, ``refuse``, ``error``). Empty queue: ``ok``, or what
    ``always`` / ``always_compensation`` set for the step.
    """

    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    comp_script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    verify_script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    ledger: list[Entry] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Effects that exist now, by idempotency key (what a real provider would hold)."""
    hook: Any = None
    """Called with the context inside every forward call, before the behaviour."""
    forever: dict[str, str] = field(default_factory=dict)
    comp_forever: dict[str, str] = field(default_factory=dict)

    def plan(self, step_id: str, *behaviours: str) -> None:
        self.script[step_id].extend(behaviours)

    def plan_compensation(self, step_id: str, *behaviours: str) -> None:
        self.comp_script[step_id].extend(behaviours)

    def always(self, step_id: str, behaviour: str) -> None:
        """Every forward call of the step behaves so once its queue is empty."""
        self.forever[step_id] = behaviour

    def always_compensation(self, step_id: str, behaviour: str) -> None:
        """Every compensation of the step behaves so once its queue is empty."""
        self.comp_forever[step_id] = behaviour

    def calls(self, step_id: str, kind: str = "call") -> list[Entry]:
        return [e for e in self.ledger if e.step_id == step_id and e.kind == kind]

    def order(self, kind: str) -> list[str]:
        return [e.step_id for e in self.ledger if e.kind == kind]

    def forward(self, ctx: StepContext) -> dict[str, Any]:
        self.ledger.append(Entry(ctx.step_id, "call", ctx.idempotency_key, ctx.attempt))
        if self.hook is not None:
            self.hook(ctx)
        queue = self.script[ctx.step_id]
        behaviour = queue.popleft() if queue else self.forever.get(ctx.step_id, "ok")
        result = {f"{ctx.step_id}_id": f"{ctx.step_id}-{ctx.operation_id}"}
        if behaviour == "fail":
            raise StepFailed(f"{ctx.step_id} refused")
        if behaviour == "refuse":
            raise StepFailed(f"{ctx.step_id} refused for good", retry=False)
        if behaviour == "timeout_lost":
            raise TimeoutError(f"{ctx.step_id} did not answer")
        if behaviour == "error":
            raise ConnectionError(f"{ctx.step_id} connection reset")
        self.effects[ctx.idempotency_key] = result
        if behaviour == "timeout_applied":
            raise TimeoutError(f"{ctx.step_id} did not answer")
        return result

    def compensate(self, ctx: StepContext) -> None:
        self.ledger.append(Entry(ctx.step_id, "compensate", ctx.idempotency_key, ctx.attempt))
        queue = self.comp_script[ctx.step_id]
        behaviour = queue.popleft() if queue else self.comp_forever.get(ctx.step_id, "ok")
        if behaviour == "fail":
            raise StepFailed(f"undo of {ctx.step_id} refused")
        if behaviour == "refuse":
            raise StepFailed(f"undo of {ctx.step_id} refused for good", retry=False)
        if behaviour == "error":
            raise ConnectionError(f"undo of {ctx.step_id}: connection reset")
        self.effects.pop(ctx.idempotency_key, None)

    def verify(self, ctx: StepContext) -> Applied | NotApplied:
        self.ledger.append(Entry(ctx.step_id, "verify", ctx.idempotency_key, ctx.attempt))
        queue = self.verify_script[ctx.step_id]
        if queue and queue.popleft() == "error":
            raise ConnectionError("lookup failed")
        found = self.effects.get(ctx.idempotency_key)
        return Applied(found) if found is not None else NotApplied("no charge under that key")


CHECKOUT_STEPS = ["create_order", "reserve_stock", "charge_payment", "book_delivery", "send_email"]


def checkout(
    provider: Provider, *, payment_verify: bool = True, name: str = "checkout", version: str = "1"
) -> Saga:
    """The guide's checkout: order, stock, payment (idempotency unknown), delivery, email."""
    saga = Saga(
        name,
        version=version,
        alerts={"default": "shop-oncall", "payment": "finance"},
        defaults={
            "max_attempts": 3,
            "compensation_attempts": 2,
            "compensation_retry_for": "10s",
            "timeout": "5s",
        },
    )

    def step(**fields: Any) -> Any:
        return saga.step(**fields)(provider.forward)

    order = step(
        id="create_order", changes=["database"], idempotent="yes", external_id="create_order_id"
    )
    order.compensate(provider.compensate)
    stock = step(id="reserve_stock", changes=["reservation"], idempotent="yes")
    stock.compensate(provider.compensate)
    pay = step(
        id="charge_payment",
        changes=["payment"],
        idempotent="unknown",
        external_id="charge_payment_id",
    )
    pay.compensate(provider.compensate)
    if payment_verify:
        pay.verify(provider.verify)
    delivery = step(id="book_delivery", changes=["external_api"], idempotent="yes")
    delivery.compensate(provider.compensate)
    step(
        id="send_email",
        changes=["email"],
        idempotent="no",
        compensation="none",
        mitigation="send a correction",
    )
    return saga
