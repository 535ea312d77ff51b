"""Heartbeats: the lease of a run is renewed while one of its calls is in progress.

A commit leases a run for the wait that follows it (a call's timeout, a sleep), but a wait
on a call can run longer than its commit planned: a coroutine's grace past its timeout, an
injected caller without one, a clock that jumps. One daemon thread per engine renews, every
``lease_s / 3``, the lease of each run whose drive waits on a call. The cadence stays well
below the lease: a peer whose heartbeats were slower than its takeover timer ran jobs twice
(pgqueuer#430). A heartbeat never shortens a lease (:func:`sagaguard.storage.journal.renewed`),
so one landing after a commit that leased the run for a long wait changes nothing.

The cadence is wall time (a thread waits); the ``now`` each heartbeat passes is the engine's
clock, and a PostgreSQL store on the server's clock judges the lease by its own ``now()``.
A heartbeat the store fences off (another owner took the run) marks the drive *lost*: the
drive stops as soon as its wait for the call ends, and writes nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sagaguard.exceptions import RunNotFoundError, StaleOwnerError
from sagaguard.storage.base import Claim, JournalStore

__all__ = ["Beat", "Heartbeats"]

logger = logging.getLogger("sagaguard.engine")

CADENCE = 3
"""Heartbeats per lease: one missed beat still leaves two before the lease runs out."""


@dataclass
class Beat:
    """One run whose drive waits on a call: its live claim, and whether it was lost."""

    operation_id: str
    claim: Callable[[], Claim]
    """The drive's current claim: each commit replaces the object (same token, new lease)."""
    lost: bool = False
    """Set when a heartbeat found the claim fenced off (or the run gone)."""


class Heartbeats:
    """The engine's heartbeat thread: started with the first call, stopped by :meth:`close`."""

    def __init__(
        self, *, store: JournalStore, clock: Callable[[], float], lease_s: float, owner: str
    ) -> None:
        self._store = store
        self._clock = clock
        self._lease_s = lease_s
        self._owner = owner
        self.interval_s = lease_s / CADENCE
        """Wall seconds between heartbeats."""
        self._changed = threading.Condition()
        self._beats: dict[str, Beat] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def beating(self, operation_id: str, claim: Callable[[], Claim]) -> Iterator[Beat]:
        """Renew the run's lease while the ``with`` block waits on one of its calls."""
        beat = Beat(operation_id, claim)
        with self._changed:
            if not self._closed:
                # No wake-up: the thread ticks every interval whatever it holds, so the
                # first beat still comes within one interval, and a step costs no switch.
                self._beats[operation_id] = beat
                self._start()
        try:
            yield beat
        finally:
            with self._changed:
                if self._beats.get(operation_id) is beat:
                    del self._beats[operation_id]

    @property
    def running(self) -> bool:
        """True while the heartbeat thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread and wait for it (a heartbeat in progress finishes first)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"sagaguard-heartbeat-{self._owner}", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while (due := self._next_due()) is not None:
            for beat in due:
                self._beat(beat)

    def _next_due(self) -> list[Beat] | None:
        """Wait one interval; the beats of the calls then in progress, or None once closed."""
        with self._changed:
            deadline = time.monotonic() + self.interval_s
            while not self._closed and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return None if self._closed else list(self._beats.values())

    def _beat(self, beat: Beat) -> None:
        try:
            self._store.heartbeat(beat.claim(), now=self._clock(), lease_s=self._lease_s)
        except (StaleOwnerError, RunNotFoundError) as exc:
            with self._changed:
                # A drive that ended meanwhile released its own claim: nothing was lost.
                if self._beats.get(beat.operation_id) is not beat:
                    return
                beat.lost = True
                del self._beats[beat.operation_id]  # a lost run is not beaten again
            logger.warning("run %s lost during a call: %s", beat.operation_id, exc)
        except Exception:  # a store outage: the next beat tries again
            logger.warning("heartbeat of run %s failed", beat.operation_id, exc_info=True)
