"""The documented bounds of every number a caller gives: flags and the Python API alike.

A number outside its bound (``--lease inf``, ``--limit 100000000000000000000``, ``nan``,
``Engine(lease_s=-1)``) is bad input: exit 2 and one line naming the flag, the value and the
bound; in Python a :class:`~sagaguard.exceptions.SagaGuardError` naming the argument. Within
the bound it is what is used; nothing is clamped silently.

    flag          bound                 used by
    --lease       0.1 to 86400 seconds  run, worker
    --interval    0.01 to 86400 seconds worker
    --batch       1 to 10000 runs       worker
    --concurrency 1 to 1024 runs        worker
    --limit       1 to 1000000 runs     runs list, review list

The engine takes the same ``LEASE`` (``lease_s``) and ``BATCH`` (``recover(limit=...)``,
``claim_runs(limit)``, ``deliver_alerts(limit=...)``), and bounds of its own:
``CALL_THREADS`` and ``WAIT``. ``Worker`` takes ``CONCURRENCY``, ``BATCH`` and ``INTERVAL``.
The numbers of a journal URL (:mod:`sagaguard.storage.options`) are checked by the same
:meth:`Bound.fault`, worded as options.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sagaguard.exceptions import SagaGuardError

__all__ = ["BATCH", "CALL_THREADS", "CONCURRENCY", "INTERVAL", "LEASE", "LIMIT", "WAIT", "Bound"]

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Bound:
    """The inclusive range a flag's number must lie in, and the unit it is counted in."""

    low: float
    high: float
    unit: str
    whole: bool = False
    """Counts (runs, threads) take whole numbers only."""

    @property
    def text(self) -> str:
        """``0.1 to 86400 seconds``: how the bound reads in help and errors."""
        return f"{_plain(self.low)} to {_plain(self.high)} {self.unit}"

    def fault(self, value: object) -> str | None:
        """What ``value`` fails (``is out of range``, say), or ``None`` when it lies in the bound.

        The one check of a number against a bound: :meth:`problem` words it for flags and
        arguments, :mod:`sagaguard.storage.options` for the options of a journal URL.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "is not a number"
        if self.whole and not isinstance(value, int):
            return "is not a whole number"
        if isinstance(value, float) and not math.isfinite(value):
            return "is not a finite number"
        if not self.low <= value <= self.high:
            return "is out of range"
        return None

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` (one phrase), or ``None`` when it lies in the bound."""
        fault = self.fault(value)
        return None if fault is None else f"{_short(value)} {fault}; use {self.text}"

    def require(self, value: Number, name: str) -> Number:
        """``value`` itself, or a ``SagaGuardError`` naming the argument ``name`` and the bound."""
        problem = self.problem(value)
        if problem is not None:
            raise SagaGuardError(f"{name}: {problem}")
        return value

    def check(self) -> Callable[[Number], Number]:
        """A typer callback that refuses a value outside the bound (exit 2, one line)."""

        def callback(value: Number) -> Number:
            problem = self.problem(value)
            if problem is not None:
                import typer  # only the command line needs it

                raise typer.BadParameter(problem)
            return value

        return callback


def _plain(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else f"{bound:g}"


def _short(value: object) -> str:
    # A flag may hold a number of thousands of digits: say how long it is, not all of it.
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool) or not isinstance(value, int):
        return type(value).__name__
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
BATCH = Bound(1, 10_000, "runs", whole=True)
"""Runs the worker claims in one pass."""
LIMIT = Bound(1, 1_000_000, "runs", whole=True)
"""Rows a listing prints."""
CONCURRENCY = Bound(1, 1024, "runs", whole=True)
"""Runs a worker drives at once, each on a thread of its own."""
CALL_THREADS = Bound(1, 1024, "threads", whole=True)
"""Threads an engine runs sync steps on: enough for a thousand calls hung at once."""
WAIT = Bound(0, 86_400, "seconds")
"""How long ``run``/``resume`` wait for an abandoned call of the engine to return."""
