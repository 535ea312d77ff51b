"""The threads sync calls of user code run on: kept alive, handed one call at a time.

Every sync step runs on a thread of its own so the engine can stop *waiting* at its timeout
(:mod:`sagaguard.engine.calls`). A call is handed to an idle thread with one lock release,
and its end is told with another: about a tenth of what a pool's queue and futures cost,
and the caller blocks at once after the hand-off, so the call thread rarely wakes to find
the interpreter still held. At most ``max_threads`` exist; a call that finds them all busy
(with calls that hung) waits in a queue, first come first served, and may be withdrawn
before it starts.

The threads are daemons, so an idle one never holds the process open; at interpreter exit
the calls still running are waited for, as a pool's threads would be.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import deque
from typing import Protocol

__all__ = ["CallThreads", "Task"]


class Task(Protocol):
    """What a call thread runs: ``run`` on a thread, or ``withdraw`` if it never gets one."""

    def run(self) -> None:
        """Run on a call thread (never raises)."""
        ...

    def withdraw(self) -> None:
        """The threads were closed before the task started: it never will."""
        ...


class _Thread:
    """One call thread: it waits on ``_go`` until a task is handed to it."""

    __slots__ = ("_go", "_task", "thread")

    def __init__(self, threads: CallThreads, first: Task, name: str) -> None:
        self._go = threading.Lock()  # unlocked: the first task is handed already
        self._task: Task | None = first
        # A weak reference, so threads of an engine nobody closed end once it is collected.
        self.thread = threading.Thread(
            target=self._serve, args=(weakref.ref(threads),), name=name, daemon=True
        )
        self.thread.start()

    def hand(self, task: Task | None) -> None:
        """Wake the waiting thread with ``task`` (``None``: end)."""
        self._task = task
        self._go.release()

    def _serve(self, owner: weakref.ref[CallThreads]) -> None:
        while True:
            self._go.acquire()
            task, self._task = self._task, None
            if task is None:
                return
            task.run()
            del task  # nothing of a call outlives it here
            threads = owner()
            if threads is None or not threads.free(self):
                return
            del threads


class CallThreads:
    """Up to ``max_threads`` persistent threads running tasks, each one task at a time."""

    def __init__(self, *, max_threads: int, name: str) -> None:
        self._max = max_threads
        self._name = name
        self._lock = threading.Lock()
        self._idle: list[_Thread] = []
        self._all: list[_Thread] = []
        self._count = 0
        self._queued: deque[Task] = deque()
        self._closed = False
        _LIVE.add(self)
        weakref.finalize(self, _end_all, self._idle)

    def submit(self, task: Task) -> None:
        """Run ``task`` on an idle thread, a new one, or (all busy) the first to be free.

        ``RuntimeError`` once closed: nothing would ever run it.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot start a call: the engine's call threads are closed")
            if self._idle:
                parked = self._idle.pop()  # the thread that ran last: its stack is warm
            elif self._count < self._max:
                parked, self._count = None, self._count + 1
                name = f"{self._name}_{self._count - 1}"
            else:
                self._queued.append(task)
                return
        if parked is not None:
            parked.hand(task)
            return
        started = _Thread(self, task, name)  # outside the lock: its task may start a call
        with self._lock:
            self._all.append(started)

    def free(self, thread: _Thread) -> bool:
        """``thread`` ended its task: hand it the one queued longest, or keep it idle.

        False once closed with nothing queued: the thread ends.
        """
        with self._lock:
            if self._queued:
                thread.hand(self._queued.popleft())
            elif self._closed:
                return False
            else:
                self._idle.append(thread)
        return True

    def close(self) -> None:
        """Take no more tasks; queued ones are withdrawn, idle threads end, busy ones finish."""
        with self._lock:
            self._closed = True
            queued, idle = list(self._queued), self._idle[:]
            self._queued.clear()
            self._idle.clear()
        for task in queued:
            task.withdraw()
        _end_all(idle)

    def join(self) -> None:
        """Wait for every thread to end (call :meth:`close` first)."""
        with self._lock:
            threads = list(self._all)
        for thread in threads:
            thread.thread.join()


def _end_all(idle: list[_Thread]) -> None:
    """End the idle threads in ``idle`` (emptied); busy threads end after their task."""
    ended = idle[:]
    idle.clear()
    for thread in ended:
        thread.hand(None)


_LIVE: weakref.WeakSet[CallThreads] = weakref.WeakSet()


@atexit.register
def _finish_running_calls() -> None:
    """At interpreter exit, let calls still running end (a call may be mid-charge)."""
    for threads in list(_LIVE):
        threads.close()
        threads.join()
