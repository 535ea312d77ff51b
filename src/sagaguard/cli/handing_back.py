"""``sagaguard run`` on SIGINT or SIGTERM: hand the run back, then exit 130 or 143.

The first signal stops the drive. The call in flight goes on in its thread, and
:meth:`~sagaguard.engine.Engine.hand_back` waits for it (up to the longest step timeout),
journals its outcome and releases the lease, so a worker or a rerun continues at once. A
second signal during that wait exits at once: the call's intent is journaled, so once the
lease runs out the next owner treats the call as unknown (verify or review), never repeats
it blind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import typer

from sagaguard.bounds import WAIT
from sagaguard.cli.errors import PROG, report_error
from sagaguard.cli.running import _StopFlag
from sagaguard.engine.handing_back import HandBack, HandedBack

if TYPE_CHECKING:
    from sagaguard.engine import Engine, RunResult, Saga
    from sagaguard.storage.payloads import JSONValue

__all__ = ["run_or_hand_back"]

_LABEL = "interrupted"


class _Interrupt(_StopFlag):
    """The worker's signal flag, for ``run``: the first signal stops the drive, a second exits."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.signum is not None:
            report_error(
                f"{signal.Signals(signum).name} again: exiting now; the call's intent is "
                "journaled, so its next owner verifies it or asks for review once the lease "
                f"runs out, and never repeats it blind: {PROG} runs list",
                label=_LABEL,
            )
            _exit_now(128 + signum)
        self.signum = signum
        self.requested = True
        raise KeyboardInterrupt  # stops the drive; the engine keeps the call in flight


def run_or_hand_back(
    engine: Engine, saga: Saga, *, operation_id: str, payload: JSONValue
) -> RunResult:
    """``engine.run_detailed``; on SIGINT/SIGTERM the run is handed back, exit 130/143."""
    interrupt = _Interrupt()
    with interrupt.installed():
        try:
            return engine.run_detailed(saga, operation_id=operation_id, input=payload)
        except KeyboardInterrupt:
            if interrupt.signum is None:
                raise  # not a signal of ours: no handler could be installed here
            report_error(
                "journaling the call in flight, then handing the run back (Ctrl-C again to force)",
                label=_LABEL,
            )
            wait_s = min(WAIT.high, max(saga.process.timeout_for(s) for s in saga.process.steps))
            handed = engine.hand_back(operation_id, wait_s=wait_s)
            report_error(_what_became(handed, operation_id, wait_s), label=_LABEL)
            code = 128 + interrupt.signum
    if handed.result in (HandBack.IN_FLIGHT, HandBack.BUSY):
        # A call still runs on a pool thread, and a normal exit would wait for it (the
        # interpreter joins those threads): close the journal, then leave without it.
        engine.close()
        engine.store.close()
        _exit_now(code)
    raise typer.Exit(code)


def _what_became(handed: HandedBack, operation_id: str, wait_s: float) -> str:
    snapshot = handed.snapshot
    if snapshot is None:
        return f"run {operation_id} was never journaled: nothing to hand back"
    status = snapshot.run.status.value
    if handed.result is HandBack.RELEASED:
        if not snapshot.run.status.active:
            return f"run {operation_id} is {status}: journaled and let go"
        return (
            f"run {operation_id} handed back ({status}); a worker or a rerun continues it now: "
            f"{PROG} runs show {operation_id}"
        )
    if handed.result is HandBack.NOT_HELD:
        return f"run {operation_id} is {status} and not held here: nothing to hand back"
    return (
        f"the call in flight did not return within {wait_s:g}s: run {operation_id} stays "
        "leased to this process until its lease runs out, so nobody repeats the call while it "
        "may still run; then a worker or a rerun verifies it or asks for review"
    )


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for call threads (a step still running would hold a normal exit)."""
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can reach it.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
