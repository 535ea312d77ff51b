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

import math
from dataclasses import dataclass

from sagaguard.exceptions import StoreError

__all__ = ["BUSY_TIMEOUT_S", "POOL_SIZE", "RECONNECT_S", "StoreOption"]


@dataclass(frozen=True, slots=True)
class StoreOption:
    """One numeric option of a store: its name, its inclusive bound and its unit."""

    name: str
    low: float
    high: float
    unit: str
    whole: bool = False
    """A count (``pool_size``): only whole numbers."""

    @property
    def bound(self) -> str:
        """``0 to 86400 seconds``: how the bound reads in an error."""
        return f"{self.low:g} to {self.high:g} {self.unit}"

    def parse(self, text: str) -> float:
        """The value of the option as written in a URL, or ``StoreError`` naming it."""
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            kind = "a whole number" if self.whole else "a number"
            raise self._error(text, f"is not {kind}") from None
        return self.check(value, shown=text)

    def check(self, value: float, *, shown: str | None = None) -> float:
        """``value`` itself when it lies within the bound, else ``StoreError`` naming it."""
        text = shown if shown is not None else repr(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(text, "is not a number")
        if self.whole and not isinstance(value, int):
            raise self._error(text, "is not a whole number")
        if not math.isfinite(value):
            raise self._error(text, "is not a finite number")
        if not self.low <= value <= self.high:
            raise self._error(text, "is out of range")
        return value

    def _error(self, text: str, problem: str) -> StoreError:
        # A value may be thousands of characters long: say enough to recognise it.
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        return StoreError(f"journal option {self.name}={shown} {problem}: use {self.bound}")


BUSY_TIMEOUT_S = StoreOption("busy_timeout_s", 0, 86_400, "seconds")
"""How long a SQLite call waits for another writer's lock before it fails."""
POOL_SIZE = StoreOption("pool_size", 1, 1_000, "connections", whole=True)
"""The most connections a PostgreSQL store holds open at once."""
RECONNECT_S = StoreOption("reconnect_s", 0.1, 86_400, "seconds")
"""How long a PostgreSQL call keeps trying on fresh connections after losing one."""
