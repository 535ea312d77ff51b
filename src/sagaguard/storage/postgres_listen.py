"""LISTEN for new work on PostgreSQL, and keep listening across connection losses and restarts.

One daemon thread per store holds its own connection (not the pool's), LISTENs on the
store's channel and turns each notification into a :class:`~sagaguard.storage.wakeup.WorkSignal`
notice. When the connection drops (a killed backend, a server restart) it reconnects with
capped exponential backoff and LISTENs again; since a notification sent meanwhile is lost,
it wakes the waiters once after every reconnect, so they poll. Peers that lose LISTEN this
way stay deaf until restarted.

Every NOTIFY reaches every listener, and a fleet's submits send one each. While nobody in
the process waits for work (its worker's slots are full), the thread does not wake for each
one: it reads what has come once a tick and gives one notice for all of it. Read it must,
for the server keeps every notification until each listener has taken it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sagaguard.storage.wakeup import WorkSignal

if TYPE_CHECKING:
    import psycopg

__all__ = ["Listener"]

_TICK_S = 0.25
"""The longest the thread goes without looking at ``stop()`` and at what has come."""

logger = logging.getLogger("sagaguard.storage.postgres")


class Listener:
    """The background LISTEN of one store; started on first use, stopped by :meth:`stop`."""

    def __init__(
        self,
        *,
        connect: Callable[[], psycopg.Connection[tuple[object, ...]]],
        channel: str,
        signal: WorkSignal,
        backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._signal = signal
        self._backoff = backoff_s
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._tried = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.reconnects = 0
        """How many times the connection was re-established (for tests and ``info``)."""

    def start(self) -> None:
        """Start listening (once); returns when LISTEN is in effect or the first try failed."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sagaguard-listen", daemon=True
                )
                self._thread.start()
        self._tried.wait(timeout=10.0)

    @property
    def listening(self) -> bool:
        """True while a LISTEN connection is up."""
        return self._listening.is_set()

    def wait_listening(self, timeout_s: float) -> bool:
        """Block until a LISTEN connection is up (after a reconnect, for instance)."""
        return self._listening.wait(timeout_s)

    def stop(self) -> None:
        """Stop the thread and close its connection."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        import psycopg

        delay = self._backoff[0]
        connected_before = False
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    self._listening.set()
                    self._tried.set()
                    if connected_before:
                        self.reconnects += 1
                        self._signal.notify()  # what was sent while deaf is lost: poll now
                    connected_before, delay = True, self._backoff[0]
                    while not self._stopping.is_set():
                        self._take(conn)
            except psycopg.Error as exc:
                self._listening.clear()
                self._tried.set()  # start() returns; waiters poll until LISTEN is back
                if self._stopping.is_set():
                    break
                logger.warning("LISTEN connection lost (%s); reconnecting in %.2fs", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._backoff[1])
        self._listening.clear()

    def _take(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Wait for a notification while somebody waits for work, else for a tick (then
        take what came meanwhile); one notice for whatever one read brought."""
        wanted = self._signal.wanted.wait(_TICK_S)
        came = False
        for _ in conn.notifies(timeout=_TICK_S if wanted else 0.0, stop_after=1):
            came = True
        if came:
            self._signal.notify()
