"""The numeric options of journal stores, read from a URL or given in Python, and bounded.

A journal URL is configuration, often read from ``$SAGAGUARD_DB``. A number outside its
bound (``?busy_timeout_s=inf``, ``?pool_size=0``, ``?reconnect_s=nan``) would reach a
driver as an endless wait or an overflow, or be quietly replaced by something else; it is
refused instead with one :class:`~sagaguard.exceptions.StoreError` naming the option, the
value and the bound, before anything is opened. Within the bound a value is used as given.

    option          bound                  store
    busy_timeout_s  0 to 86400 seconds     sqlite
    pool_size       1 to 1000 connections  postgresql
    reconnect_s     0.1 to 86400 seconds   postgresql
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.bounds import Bound
from sagaguard.exceptions import StoreError

__all__ = ["BUSY_TIMEOUT_S", "POOL_SIZE", "RECONNECT_S", "StoreOption"]


@dataclass(frozen=True, slots=True)
class StoreOption:
    """One numeric option of a store: its name and its inclusive bound (checked as flags are)."""

    name: str
    bound: Bound

    def parse(self, text: str) -> float:
        """The value of the option as written in a URL, or ``StoreError`` naming it."""
        try:
            value = int(text) if self.bound.whole else float(text)
        except ValueError:
            kind = "a whole number" if self.bound.whole else "a number"
            raise self._error(text, f"is not {kind}") from None
        return self.check(value, shown=text)

    def check(self, value: float, *, shown: str | None = None) -> float:
        """``value`` itself when it lies within the bound, else ``StoreError`` naming it."""
        fault = self.bound.fault(value)
        if fault is not None:
            raise self._error(shown if shown is not None else repr(value), fault)
        return value

    def _error(self, text: str, problem: str) -> StoreError:
        # A value may be thousands of characters long: say enough to recognise it.
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        return StoreError(f"journal option {self.name}={shown} {problem}: use {self.bound.text}")


BUSY_TIMEOUT_S = StoreOption("busy_timeout_s", Bound(0, 86_400, "seconds"))
"""How long a SQLite call waits for another writer's lock before it fails."""
POOL_SIZE = StoreOption("pool_size", Bound(1, 1_000, "connections", whole=True))
"""The most connections a PostgreSQL store holds open at once."""
RECONNECT_S = StoreOption("reconnect_s", Bound(0.1, 86_400, "seconds"))
"""How long a PostgreSQL call keeps trying on fresh connections after losing one."""
