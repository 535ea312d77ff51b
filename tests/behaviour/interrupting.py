"""Interrupting the main thread the way Ctrl-C does, while a step waits at a gate."""

from __future__ import annotations

import signal
import threading

from sagaguard.engine import StepContext

__all__ = ["WAIT_S", "Gate", "Interrupter"]

WAIT_S = 10.0
"""Upper bound for a wait that the test's own events end much sooner."""


class Gate:
    """Holds the charge inside the provider until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    def hold(self, ctx: StepContext) -> None:
        self.entered.set()
        assert self.open.wait(WAIT_S), "the test never opened the gate"


class Interrupter:
    """Sends the main thread one Ctrl-C once the step is inside the provider.

    A SIGINT that lands just before the main thread blocks on a lock is only seen when that
    wait next wakes (CPython runs handlers between bytecodes). So the signal is repeated
    until the main thread took it, and the handler raises ``KeyboardInterrupt`` once: later
    copies are dropped.
    """

    def __init__(self, gate: Gate) -> None:
        self._taken = threading.Event()
        self._raised = False
        self._previous = signal.signal(signal.SIGINT, self._handle)
        main = threading.main_thread().ident
        assert main is not None

        def interrupt() -> None:
            assert gate.entered.wait(WAIT_S)
            while not self._taken.wait(0.05):
                signal.pthread_kill(main, signal.SIGINT)

        self._thread = threading.Thread(target=interrupt)
        self._thread.start()

    def _handle(self, signum: int, frame: object) -> None:
        if not self._raised:
            self._raised = True
            raise KeyboardInterrupt

    def join(self) -> None:
        """The main thread has its KeyboardInterrupt: stop sending, restore the handler."""
        self._taken.set()
        self._thread.join()
        signal.signal(signal.SIGINT, self._previous)
