"""Simulated external systems for the checkout: orders, inventory, payment, carrier and mail.

Every effect a provider holds is written to a :class:`Ledger` (a charge, a refund, a
reservation, ...), so a demo or a test can show exactly what happened in the world, not
only what the journal believes. The payment provider deliberately does *not* deduplicate
charges by idempotency key (the worst case the guide warns about): a blind retry would
charge twice, and only its lookup by key (``find_charge``) makes a retry safe.

Failures are asked for by name, per call (see :func:`simulated_fault`): the demo and the
runnable example put them in the saga's input under ``simulate``, so every failure can be
tried from the command line. A ledger backed by a file (JSON lines) is shared by every
process that opens it, so crashes, workers and reviews across processes see one world.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sagaguard.engine.context import StepContext
from sagaguard.exceptions import StepFailed

__all__ = ["Entry", "Ledger", "World", "order_total", "simulated_fault"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One effect held by a provider: ``psp charge pay_0001`` under an idempotency key."""

    system: str
    action: str
    ref: str
    key: str | None = None
    detail: str | None = None


class Ledger:
    """Every effect the simulated providers hold, in the order they happened.

    In memory by default; with ``path`` each entry is appended to a JSON-lines file (one
    ``write`` of one short line in append mode, which POSIX keeps whole) and read back from
    it, so several processes share the ledger.
    """

    def __init__(
        self, *, path: str | os.PathLike[str] | None = None, on_record: Callable[[Entry], None]
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: list[Entry] = []
        self._on_record = on_record

    def record(self, entry: Entry) -> Entry:
        """Append one effect."""
        if self.path is None:
            self._entries.append(entry)
        else:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(entry)) + "\n")
        self._on_record(entry)
        return entry

    def entries(self) -> list[Entry]:
        """All effects so far."""
        if self.path is None:
            return list(self._entries)
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [Entry(**json.loads(line)) for line in handle if line.strip()]

    def find(self, system: str, action: str, *, key: str | None = None) -> list[Entry]:
        """Effects of one kind, optionally only those made under ``key``."""
        return [
            e
            for e in self.entries()
            if e.system == system and e.action == action and (key is None or e.key == key)
        ]

    def count(self, system: str, action: str) -> int:
        """How many effects of one kind exist."""
        return len(self.find(system, action))


def simulated_fault(ctx: StepContext, name: str) -> str | None:
    """The failure the input asks ``name`` to simulate on this attempt, if any.

    ``ctx.input["simulate"][name]`` is a string (every attempt) or a list (one entry per
    attempt, ``"ok"`` or nothing beyond its end). ``name`` is a step id, or a step id with
    ``.verify`` / ``.compensate`` for the other two calls.
    """
    simulate = ctx.input.get("simulate") if isinstance(ctx.input, Mapping) else None
    if not isinstance(simulate, Mapping):
        return None
    wanted = simulate.get(name)
    if isinstance(wanted, list):
        wanted = wanted[ctx.attempt - 1] if ctx.attempt <= len(wanted) else None
    if not isinstance(wanted, str) or wanted == "ok":
        return None
    return wanted


def _no_op(entry: Entry) -> None:
    del entry


class World:
    """The shop's outside world: five providers writing to one ledger.

    Faults a provider understands (any other name is ignored):
    ``reserve`` ``out_of_stock``; ``charge`` ``declined`` (refused, nothing charged),
    ``answer_lost`` (charged, then the answer times out), ``no_answer`` (nothing charged,
    the call times out); ``find_charge`` ``down`` (the lookup itself fails); ``refund``
    ``refused``; ``book`` ``carrier_down``.
    """

    def __init__(
        self,
        *,
        ledger_path: str | os.PathLike[str] | None = None,
        on_record: Callable[[Entry], None] = _no_op,
    ) -> None:
        self.ledger = Ledger(path=ledger_path, on_record=on_record)

    # -- orders (the shop's own database): idempotent by key --------------------------------

    def create_order(self, *, key: str, total_cents: int) -> str:
        """Insert the order once per key (a unique constraint on the key)."""
        existing = self.ledger.find("orders", "create", key=key)
        if existing:
            return existing[0].ref
        ref = self._next_ref("order", "orders", "create")
        self.ledger.record(Entry("orders", "create", ref, key, _money(total_cents)))
        return ref

    def cancel_order(self, *, order_id: str) -> None:
        """Mark the order cancelled (once)."""
        if not self._already("orders", "cancel", order_id):
            self.ledger.record(Entry("orders", "cancel", order_id))

    # -- inventory: idempotent by key -------------------------------------------------------

    def reserve(self, *, key: str, items: int, fault: str | None = None) -> str:
        """Reserve stock once per key."""
        if fault == "out_of_stock":
            raise StepFailed("inventory: out of stock (nothing reserved)", retry=False)
        existing = self.ledger.find("inventory", "reserve", key=key)
        if existing:
            return existing[0].ref
        ref = self._next_ref("res", "inventory", "reserve")
        self.ledger.record(Entry("inventory", "reserve", ref, key, f"{items} item(s)"))
        return ref

    def release(self, *, reservation_id: str) -> None:
        """Release a reservation (once)."""
        if not self._already("inventory", "release", reservation_id):
            self.ledger.record(Entry("inventory", "release", reservation_id))

    # -- payment provider: NOT idempotent, but can look a charge up by key -------------------

    def charge(self, *, key: str, amount_cents: int, fault: str | None = None) -> str:
        """Charge the card. Every call that gets through charges again, key or not."""
        if fault == "declined":
            raise StepFailed("psp: card declined (nothing charged)", retry=False)
        if fault == "no_answer":
            raise TimeoutError("psp: no answer (the request never reached the provider)")
        ref = self._next_ref("pay", "psp", "charge")
        self.ledger.record(Entry("psp", "charge", ref, key, _money(amount_cents)))
        if fault == "answer_lost":
            raise TimeoutError("psp: the card was charged, but the answer never arrived")
        return ref

    def find_charge(self, *, key: str, fault: str | None = None) -> str | None:
        """The payment id of the charge made under ``key``, if there is one."""
        if fault == "down":
            raise ConnectionError("psp: the lookup API is unavailable")
        found = self.ledger.find("psp", "charge", key=key)
        return found[-1].ref if found else None

    def refund(self, *, payment_id: str, fault: str | None = None) -> None:
        """Refund a charge in full (once)."""
        if fault == "refused":
            # A refusal a repeat cannot change (the charge is disputed): a person at once.
            raise StepFailed(f"psp: refund of {payment_id} refused", retry=False)
        if not self._already("psp", "refund", payment_id):
            self.ledger.record(Entry("psp", "refund", payment_id))

    # -- carrier: idempotent by key ---------------------------------------------------------

    def book_delivery(self, *, key: str, order_id: str, fault: str | None = None) -> str:
        """Create a delivery draft once per key."""
        if fault == "carrier_down":
            raise StepFailed("carrier: HTTP 503, no delivery booked")
        existing = self.ledger.find("carrier", "book", key=key)
        if existing:
            return existing[0].ref
        ref = self._next_ref("dlv", "carrier", "book")
        self.ledger.record(Entry("carrier", "book", ref, key, f"for {order_id}"))
        return ref

    def cancel_delivery(self, *, delivery_id: str) -> None:
        """Cancel a delivery draft (once)."""
        if not self._already("carrier", "cancel", delivery_id):
            self.ledger.record(Entry("carrier", "cancel", delivery_id))

    # -- mail: not idempotent, cannot be undone ---------------------------------------------

    def send_email(self, *, key: str, to: str, subject: str) -> str:
        """Send an email (every call sends one); the ledger keeps the recipient."""
        del subject
        ref = self._next_ref("msg", "mail", "send")
        self.ledger.record(Entry("mail", "send", ref, key, f"to {to}"))
        return ref

    # -- plumbing ---------------------------------------------------------------------------

    def _next_ref(self, prefix: str, system: str, action: str) -> str:
        return f"{prefix}_{self.ledger.count(system, action) + 1:04d}"

    def _already(self, system: str, action: str, ref: str) -> bool:
        return any(e.ref == ref for e in self.ledger.find(system, action))


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d} EUR"


def order_total(payload: Any) -> int:
    """The order total in cents from a saga input (``order.total_cents``, default 4990)."""
    order = payload.get("order") if isinstance(payload, Mapping) else None
    total = order.get("total_cents", 4990) if isinstance(order, Mapping) else 4990
    return int(total) if isinstance(total, int | float) and not isinstance(total, bool) else 4990
