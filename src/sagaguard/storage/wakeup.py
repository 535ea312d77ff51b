"""Waking idle workers: an in-process signal, with a cheap poll for what other processes do.

A store notifies its :class:`WorkSignal` when it makes claimable work (a run submitted, a
run released); :meth:`WorkSignal.wait` returns at once then. Work made by another process
is seen by the ``changed`` check the store passes in (SQLite: ``PRAGMA data_version``),
asked every ``poll_s``. Either way waking is a hint: the caller claims, and may find nothing.
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

        True when woken early, False on timeout. Without ``changed`` only notices wake it.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._condition:
            start = self._notices
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = remaining if changed is None else min(remaining, poll_s)
            with self._condition:
                if self._condition.wait_for(lambda: self._notices != start, timeout=step):
                    return True
            if changed is not None and changed():
                return True
