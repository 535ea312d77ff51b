"""The fleet's saga: five steps whose fake providers fail, time out and hang at random.

    reserve  idempotent   stock, released on rollback          sometimes fails
    charge   not, verify  a payment, refunded on rollback      fails, times out (applied
                                                               or not), hangs past its timeout
    invoice  not          an invoice, voided on rollback       fails, or applies and times out
                                                               (no verify: a person decides)
    ship     idempotent   a delivery, cancelled on rollback    fails, or is refused: rollback
    notify   idempotent   an email, best-effort, irreversible  fails

What each call does is drawn from a generator seeded by the fleet's seed, the call's key,
attempt, kind and fencing token, so a call repeated under a new owner may fare differently.
Compensations fail now and then too (definitely: the engine retries them). Every call is
committed to the :class:`~tests.fleet.ledger.PgLedger` before it does anything.

Worker processes import ``tests.fleet.saga:saga``; the ledger and the seed come from the
environment (``SAGAGUARD_FLEET_LEDGER``, ``SAGAGUARD_FLEET_SCHEMA``, ``SAGAGUARD_FLEET_SEED``),
read when the first step runs, so the test process can import the saga for its model alone.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable
from typing import Any

from sagaguard import StepFailed
from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.testing.ledger import LedgerKind
from tests.fleet.ledger import PgLedger

__all__ = ["STEPS", "TIMEOUT_S", "ledger", "saga"]

STEPS = ("reserve", "charge", "invoice", "ship", "notify")
TIMEOUT_S = 0.2
"""Every step's timeout: a hang sleeps past it, so the engine stops waiting."""

# Per step: (share of calls, what happens), drawn in order; the rest succeed.
_FORWARD: dict[str, tuple[tuple[float, str], ...]] = {
    "reserve": ((0.08, "fail"),),
    "charge": ((0.05, "fail"), (0.04, "applied_timeout"), (0.03, "lost"), (0.01, "hang")),
    "invoice": ((0.05, "fail"), (0.015, "applied_timeout")),
    "ship": ((0.05, "fail"), (0.05, "refuse")),
    "notify": ((0.05, "fail"),),
}
_COMPENSATION_FAILS = 0.1


@functools.cache
def ledger() -> PgLedger:
    """The ledger named by the environment."""
    return PgLedger(
        conninfo=os.environ["SAGAGUARD_FLEET_LEDGER"], schema=os.environ["SAGAGUARD_FLEET_SCHEMA"]
    )


def _draw(ctx: StepContext, kind: LedgerKind) -> float:
    seed = os.environ.get("SAGAGUARD_FLEET_SEED", "0")
    key = f"{seed}|{kind.value}|{ctx.idempotency_key}|{ctx.attempt}|{ctx.fencing_token}"
    return random.Random(key).random()


def _behaviour(ctx: StepContext) -> str:
    draw = _draw(ctx, LedgerKind.CALL)
    for share, behaviour in _FORWARD[ctx.step_id]:
        if draw < share:
            return behaviour
        draw -= share
    return "ok"


def _provider(*, dedupe: bool) -> Callable[[StepContext], dict[str, Any]]:
    def call(ctx: StepContext) -> dict[str, Any]:
        behaviour = _behaviour(ctx)
        applies = behaviour in ("ok", "applied_timeout", "hang")
        ledger().record_effect(ctx, LedgerKind.CALL, applies=applies, dedupe=dedupe)
        if behaviour == "fail":
            raise StepFailed(f"{ctx.step_id}: the provider said no, try again")
        if behaviour == "refuse":
            raise StepFailed(f"{ctx.step_id}: refused", retry=False)
        if behaviour in ("applied_timeout", "lost"):
            raise TimeoutError(f"{ctx.step_id}: no answer")
        if behaviour == "hang":
            time.sleep(TIMEOUT_S * 2)
        return {"id": f"{ctx.step_id}-{ctx.operation_id}", "token": ctx.fencing_token}

    return call


def _compensation(*, dedupe: bool) -> Callable[[StepContext], None]:
    def undo(ctx: StepContext) -> None:
        fails = _draw(ctx, LedgerKind.COMPENSATE) < _COMPENSATION_FAILS
        ledger().record_effect(ctx, LedgerKind.COMPENSATE, applies=not fails, dedupe=dedupe)
        if fails:
            raise StepFailed(f"{ctx.step_id}: compensation refused for now")

    return undo


saga = Saga(
    "fleet_order",
    alerts={"default": "fleet-oncall"},
    defaults={
        "timeout": TIMEOUT_S,
        "max_attempts": 4,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "compensation_attempts": 8,
        "compensation_retry_for": 5,
    },
)

reserve = saga.step(id="reserve", changes=["reservation"], idempotent="yes")(_provider(dedupe=True))
reserve.compensate(_compensation(dedupe=True))
charge = saga.step(id="charge", changes=["payment"], idempotent="no")(_provider(dedupe=False))
charge.compensate(_compensation(dedupe=False))


@charge.verify
def find_charge(ctx: StepContext) -> Applied | NotApplied:
    """Look the payment up at the provider"""
    ledger().record(ctx, LedgerKind.VERIFY)
    if ledger().took_effect(ctx.operation_id, ctx.step_id, LedgerKind.CALL):
        return Applied({"id": f"charge-{ctx.operation_id}", "token": ctx.fencing_token})
    return NotApplied("the provider has no payment under that key")


invoice = saga.step(id="invoice", changes=["database"], idempotent="no")(_provider(dedupe=False))
invoice.compensate(_compensation(dedupe=False))
ship = saga.step(id="ship", changes=["external_api"], idempotent="yes")(_provider(dedupe=True))
ship.compensate(_compensation(dedupe=True))
saga.step(id="notify", changes=["email"], idempotent="yes", compensation="none", required=False)(
    _provider(dedupe=True)
)
