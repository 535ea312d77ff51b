"""The steps of signals.yaml: the first charge takes its orders from the test on stdin.

Every effect is a line in the ledger file named by ``SIGNALS_LEDGER``, so the test counts
charges whatever process made them. On its first attempt the charge prints ``in step`` and
reads one command from stdin:

    go                charge, then answer
    charge-then-hang  charge, print ``charged``, then wait for another line before answering
    exit N            raise SystemExit(N) without charging
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from sagaguard.engine import Applied, NotApplied, StepContext


def _ledger() -> str:
    return os.environ["SIGNALS_LEDGER"]


def _write(action: str, key: str) -> None:
    with open(_ledger(), "a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"action": action, "key": key}) + "\n")


def effects(action: str, ledger: str) -> list[str]:
    """The keys of the ledger's ``action`` lines (charge, refund, ship)."""
    if not os.path.exists(ledger):
        return []
    with open(ledger, encoding="utf-8") as lines:
        entries = [json.loads(line) for line in lines if line.strip()]
    return [e["key"] for e in entries if e["action"] == action]


def charge(ctx: StepContext) -> dict[str, Any]:
    """Charge once per call; the first attempt waits for the test's command."""
    command = "go"
    if ctx.attempt == 1:
        print("in step", flush=True)
        command = sys.stdin.readline().strip()
    if command.startswith("exit "):
        sys.exit(int(command.split()[1]))
    _write("charge", ctx.idempotency_key)
    if command == "charge-then-hang":
        print("charged", flush=True)
        sys.stdin.readline()
    return {"charge_id": f"ch-{ctx.idempotency_key}"}


def find_charge(ctx: StepContext) -> Applied | NotApplied:
    """Look the charge up by its key in the ledger."""
    if ctx.idempotency_key in effects("charge", _ledger()):
        return Applied({"charge_id": f"ch-{ctx.idempotency_key}"})
    return NotApplied(f"no charge under {ctx.idempotency_key}")


def refund(ctx: StepContext) -> None:
    """Refund the charge."""
    _write("refund", ctx.idempotency_key)


def ship(ctx: StepContext) -> dict[str, str]:
    """Book the delivery."""
    _write("ship", ctx.idempotency_key)
    return {"ship_id": f"sh-{ctx.operation_id}"}
