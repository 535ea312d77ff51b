"""The documented bounds of every numeric flag, checked before a command does anything.

A number outside its bound (``--lease inf``, ``--limit 100000000000000000000``, ``nan``) is
bad input: exit 2 and one line naming the flag, the value and the bound. Within the bound it
is what the command uses; nothing is clamped silently.

    flag          bound                 used by
    --lease       0.1 to 86400 seconds  run, worker
    --interval    0.01 to 86400 seconds worker
    --batch       1 to 10000 runs       worker
    --limit       1 to 1000000 runs     runs list, review list
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import typer

__all__ = ["BATCH", "INTERVAL", "LEASE", "LIMIT", "Bound"]

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Bound:
    """The inclusive range a flag's number must lie in, and the unit it is counted in."""

    low: float
    high: float
    unit: str

    @property
    def text(self) -> str:
        """``0.1 to 86400 seconds``: how the bound reads in help and errors."""
        return f"{_plain(self.low)} to {_plain(self.high)} {self.unit}"

    def check(self) -> Callable[[Number], Number]:
        """A typer callback that refuses a value outside the bound (exit 2, one line)."""

        def callback(value: Number) -> Number:
            if isinstance(value, float) and not math.isfinite(value):
                raise typer.BadParameter(f"{value} is not a finite number; use {self.text}")
            if not self.low <= value <= self.high:
                raise typer.BadParameter(f"{_short(value)} is out of range; use {self.text}")
            return value

        return callback


def _plain(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else f"{bound:g}"


def _short(value: float) -> str:
    # A flag may hold a number of thousands of digits: say how long it is, not all of it.
    if isinstance(value, float):
        return f"{value:g}"
    try:
        digits = str(value)
    except ValueError:
        return "a number of over 4300 digits"
    return digits if len(digits) <= 24 else f"{digits[:12]}... ({len(digits)} digits)"


LEASE = Bound(0.1, 86_400, "seconds")
"""How long a run is owned between journal writes: a day at most, so a dead owner's run
is taken over within a day."""
INTERVAL = Bound(0.01, 86_400, "seconds")
"""The worker's pause between recovery passes."""
BATCH = Bound(1, 10_000, "runs")
"""Runs the worker claims in one pass."""
LIMIT = Bound(1, 1_000_000, "runs")
"""Rows a listing prints."""
