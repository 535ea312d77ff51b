"""Fakes of the checkout's three providers: a payment provider, a warehouse and a mailer.

Each one behaves like the real service in the ways that matter when things fail, and keeps
every effect it made (``effects()``), so ``sagaguard verify`` can compare the world with
the journal:

- :class:`FakePaymentProvider` does **not** deduplicate charges (the worst case the guide
  warns about): a blind retry charges twice. Charges can be looked up by the idempotency key
  they were made with, and refunded by charge id. It refuses a caller whose fencing token is
  older than one it has seen for the order.
- :class:`FakeWarehouse` deduplicates reservations on the idempotency key, as an inventory
  API with an ``Idempotency-Key`` header does.
- :class:`FakeMailer` sends what it is given; an email cannot be unsent.

Swap them for your real clients in production; keep them in your tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Effect:
    """One thing a provider did: a charge, a reservation, an email."""

    ref: str
    idempotency_key: str | None
    detail: str
    undone: bool = False


class _Provider:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._effects: list[Effect] = []
        self._lock = threading.Lock()

    def effects(self) -> list[Effect]:
        """Every effect made, undone ones included, oldest first."""
        with self._lock:
            return list(self._effects)

    def _make(self, key: str | None, detail: str) -> Effect:
        with self._lock:
            effect = Effect(f"{self._prefix}_{len(self._effects) + 1:04d}", key, detail)
            self._effects.append(effect)
            return effect

    def _find(self, ref: str) -> Effect | None:
        with self._lock:
            return next((e for e in self._effects if e.ref == ref), None)


class StaleCallerError(Exception):
    """The provider has seen a newer fencing token for this order: the caller is stale."""


class FakePaymentProvider(_Provider):
    """Charges cards; a repeated idempotency key is *not* a no-op here."""

    def __init__(self) -> None:
        super().__init__("ch")
        self._tokens: dict[str, int] = {}

    def charge(self, *, amount_cents: int, idempotency_key: str, fencing_token: int) -> str:
        """Charge the card; returns the charge id."""
        order = idempotency_key.rsplit(":", 1)[0]
        with self._lock:
            if fencing_token < self._tokens.get(order, 0):
                raise StaleCallerError(f"fencing token {fencing_token} is stale for {order}")
            self._tokens[order] = fencing_token
        return self._make(idempotency_key, f"charged {amount_cents} cents").ref

    def find_charge(self, *, idempotency_key: str) -> str | None:
        """The id of the live charge made under ``idempotency_key``, if there is one."""
        live = [e for e in self.effects() if e.idempotency_key == idempotency_key and not e.undone]
        return live[-1].ref if live else None

    def refund(self, charge_id: str) -> None:
        """Refund a charge in full (refunding it again changes nothing)."""
        charge = self._find(charge_id)
        if charge is None:
            raise LookupError(f"no charge {charge_id!r}")
        charge.undone = True


class FakeWarehouse(_Provider):
    """Reserves stock; the same idempotency key returns the same reservation."""

    def __init__(self) -> None:
        super().__init__("res")

    def reserve(self, *, items: int, idempotency_key: str | None) -> str:
        """Reserve ``items``; returns the reservation id."""
        for effect in self.effects():
            if idempotency_key is not None and effect.idempotency_key == idempotency_key:
                if not effect.undone:
                    return effect.ref
        return self._make(idempotency_key, f"{items} items reserved").ref

    def release(self, reservation_id: str) -> None:
        """Release a reservation."""
        reservation = self._find(reservation_id)
        if reservation is None:
            raise LookupError(f"no reservation {reservation_id!r}")
        reservation.undone = True


class FakeMailer(_Provider):
    """Sends email: every call is one more email in someone's inbox."""

    def __init__(self) -> None:
        super().__init__("msg")

    def send(self, *, to: str, subject: str, idempotency_key: str) -> str:
        """Send one email; returns the message id."""
        return self._make(idempotency_key, f"to {to}: {subject}").ref
