"""Waking idle workers: an in-process signal, with a cheap poll for what other processes do.

A store notifies its :class:`WorkSignal` when it makes claimable work (a run submitted, a
run released); :meth:`WorkSignal.wait` returns at once then. Work made by another process
is seen by the ``changed`` check the store passes in (SQLite: ``PRAGMA data_version``),
asked every ``poll_s``. Either way waking is a hint: the caller claims, and may find nothing.

A notice is not lost between two waits: a thread that has waited before is woken at once
by a notice given while it was away (claiming and driving what its last wake-up found).
Otherwise work submitted just after a worker's last claim of a pass would sit until its
next poll, however long that is, though the NOTIFY of it arrived.

:attr:`WorkSignal.wanted` is set while a thread waits, so that a source of notices (the
LISTEN thread) need not wake for each one while nobody waits: a busy worker claims again
as soon as it has a free slot, and wants no wake-up until it finds nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["WorkSignal"]


class WorkSignal:
    """A counter of "work may exist" notices that waiters can block on."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._notices = 0
        self._seen = threading.local()
        """Per thread: the notices its last wait accounted for."""
        self._waiting = 0
        self.wanted = threading.Event()
        """Set while at least one thread is in :meth:`wait`."""

    def notify(self) -> None:
        """Wake every waiter: claimable work may exist now."""
        with self._condition:
            self._notices += 1
            self._condition.notify_all()

    def wait(
        self,
        timeout_s: float,
        *,
        changed: Callable[[], bool] | None = None,
        poll_s: float = 0.05,
    ) -> bool:
        """Block until a notice, ``changed()`` answers True, or ``timeout_s`` passes.

        True when woken early (by a notice given since this thread's last wait, too), False
        on timeout. Without ``changed`` only notices wake it.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._condition:
            start: int = getattr(self._seen, "notices", self._notices)
            self._waiting += 1
            self.wanted.set()
        self._seen.notices = start
        try:
            return self._wait(start, deadline, changed, poll_s)
        finally:
            with self._condition:
                self._waiting -= 1
                if not self._waiting:
                    self.wanted.clear()

    def _wait(
        self, start: int, deadline: float, changed: Callable[[], bool] | None, poll_s: float
    ) -> bool:
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            step = remaining if changed is None else min(remaining, poll_s)
            with self._condition:
                if self._condition.wait_for(lambda: self._notices != start, timeout=step):
                    self._seen.notices = self._notices
                    return True
            if changed is not None and changed():
                with self._condition:
                    self._seen.notices = self._notices
                return True
            if remaining <= 0:
                return False
