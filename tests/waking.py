"""Lining up a test of a worker's wake-up: know it is idle, then make work until it is done.

A worker cannot say when its wait for work has begun, only that it is about to wait; so a
test first waits for :attr:`SaysWhenIdle.waiting`, then submits a new run every tenth of a
second (:func:`submit_until`) until one is finished. Without a wake-up none would be before
the worker's long interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sagaguard.storage import JournalStore

__all__ = ["SaysWhenIdle", "submit_until"]


class SaysWhenIdle:
    """A store that says when its worker first waits for work (its claims found none)."""

    def __init__(self, inner: JournalStore) -> None:
        self._inner = inner
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def wait_for_work(self, timeout_s: float) -> bool:
        self.waiting.set()
        return self._inner.wait_for_work(timeout_s)


def submit_until(
    done: threading.Event, submit: Callable[[str], object], *, tries: int = 50
) -> bool:
    """Submit runs ``op-0``, ``op-1``, ... a tenth of a second apart until ``done`` is set."""
    for number in range(tries):
        submit(f"op-{number}")
        if done.wait(0.1):
            return True
    return False
