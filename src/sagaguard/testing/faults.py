"""Fault injectors: crash the real engine at a named point, in-process or for real.

The engine offers every :class:`~sagaguard.engine.faults.FaultPoint` to its injector. A
:class:`CrashAt` picks one point (optionally one step, one attempt, one run) and there either
raises :class:`~sagaguard.engine.faults.SimulatedCrash` (``mode="raise"``: fast, in-process)
or sends the process ``SIGKILL`` (``mode="kill"``: nothing runs afterwards, no ``finally``, no
flush, exactly like a power cut of that process). A :class:`FaultPlan` holds several injectors
and keeps a trace of every point it was offered, so a test can also assert where the engine
passed.

    engine = Engine(store=..., faults=CrashAt(FaultPoint.AFTER_CALL, step_id="charge"))
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sagaguard.engine.faults import FaultInjector, SimulatedCrash
from sagaguard.vocabulary import FaultPoint

__all__ = ["CrashAt", "CrashMode", "FaultPlan", "Hit"]

CrashMode = Literal["raise", "kill"]
_MODES: tuple[CrashMode, ...] = ("raise", "kill")


@dataclass(frozen=True, slots=True)
class Hit:
    """One fault point the engine passed: where, in which run, step and attempt."""

    point: FaultPoint
    operation_id: str
    step_id: str
    attempt: int


class CrashAt:
    """Crash when the engine reaches ``point``, optionally only for one step/attempt/run.

    A filter left ``None`` matches anything. ``times`` bounds how often it fires in this
    process (``None``: every match); a killed process fires at most once anyway.
    """

    def __init__(
        self,
        point: FaultPoint | str,
        *,
        step_id: str | None = None,
        attempt: int | None = None,
        operation_id: str | None = None,
        mode: CrashMode = "raise",
        times: int | None = None,
    ) -> None:
        self.point = FaultPoint(point)
        if mode not in _MODES:
            raise ValueError(f"mode must be 'raise' or 'kill', not {mode!r}")
        if attempt is not None and attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), got {times}")
        self.step_id = step_id
        self.attempt = attempt
        self.operation_id = operation_id
        self.mode: CrashMode = mode
        self.times = times
        self.fired: list[Hit] = []
        """Every point where this injector crashed (in ``raise`` mode)."""

    @classmethod
    def from_text(cls, text: str, *, mode: CrashMode = "raise") -> CrashAt:
        """Parse ``point[:step_id[:attempt]]`` (``*`` or empty = any), e.g. ``after_call:charge:2``.

        Handy to pass a crash to a child process on its command line.
        """
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise ValueError(f"expected point[:step_id[:attempt]], got {text!r}")
        try:
            point = FaultPoint(parts[0])
        except ValueError:
            known = ", ".join(p.value for p in FaultPoint)
            raise ValueError(f"unknown fault point {parts[0]!r} (known: {known})") from None
        step = parts[1] if len(parts) > 1 and parts[1] not in ("", "*") else None
        attempt = None
        if len(parts) > 2 and parts[2] not in ("", "*"):
            if not parts[2].isdigit():
                raise ValueError(f"attempt must be a positive number, got {parts[2]!r}")
            attempt = int(parts[2])
        return cls(point, step_id=step, attempt=attempt, mode=mode)

    @property
    def exhausted(self) -> bool:
        """True when it has fired ``times`` times and will not fire again."""
        return self.times is not None and len(self.fired) >= self.times

    def matches(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> bool:
        """True when this point, run, step and attempt are the ones aimed at."""
        return (
            point == self.point
            and (self.step_id is None or self.step_id == step_id)
            and (self.attempt is None or self.attempt == attempt)
            and (self.operation_id is None or self.operation_id == operation_id)
        )

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        """Crash here if this point is aimed at and the injector is not exhausted."""
        if self.exhausted or not self.matches(
            point, operation_id=operation_id, step_id=step_id, attempt=attempt
        ):
            return
        self.fired.append(Hit(FaultPoint(point), operation_id, step_id, attempt))
        if self.mode == "kill":
            # No cleanup on purpose: a real crash runs no finally blocks and flushes nothing.
            os.kill(os.getpid(), signal.SIGKILL)
        raise SimulatedCrash(
            f"simulated crash at {point.value} of step {step_id} attempt {attempt} "
            f"(run {operation_id})"
        )

    def __repr__(self) -> str:
        filters = [f"step_id={self.step_id!r}"] if self.step_id else []
        filters += [f"attempt={self.attempt}"] if self.attempt is not None else []
        filters += [f"operation_id={self.operation_id!r}"] if self.operation_id else []
        filters += [f"mode={self.mode!r}"] + ([f"times={self.times}"] if self.times else [])
        return f"CrashAt({self.point.value!r}, {', '.join(filters)})"


class FaultPlan:
    """Several injectors at once, offered every fault point in order; records a trace.

    ``seen`` lists every point the engine passed (before any injector acted on it), so a
    test can assert the order of write-ahead points as well as crash on them.
    """

    def __init__(self, *, faults: Iterable[FaultInjector] = ()) -> None:
        self.faults: list[FaultInjector] = list(faults)
        self.seen: list[Hit] = []

    def add(self, fault: FaultInjector) -> FaultPlan:
        """Append an injector; returns the plan so calls chain."""
        self.faults.append(fault)
        return self

    @property
    def fired(self) -> list[Hit]:
        """Every crash the plan's :class:`CrashAt` injectors caused, in plan order."""
        return [hit for fault in self.faults if isinstance(fault, CrashAt) for hit in fault.fired]

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        """Record the point, then let each injector act on it (the first crash wins)."""
        self.seen.append(Hit(FaultPoint(point), operation_id, step_id, attempt))
        for fault in self.faults:
            fault.check(point, operation_id=operation_id, step_id=step_id, attempt=attempt)
