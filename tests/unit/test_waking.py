"""The wake-up signal and the LISTEN thread's reading of it, without a server.

Every NOTIFY reaches every listening worker; a fleet's submits send one each. A listener
that woke for each one, while its worker had no free slot to fill, spent a thread switch
per submit per worker for nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sagaguard.storage import postgres_listen
from sagaguard.storage.postgres_listen import Listener
from sagaguard.storage.wakeup import WorkSignal


class CountingSignal(WorkSignal):
    def __init__(self) -> None:
        super().__init__()
        self.notices = 0

    def notify(self) -> None:
        self.notices += 1
        super().notify()


class Arrived:
    """A LISTEN connection whose socket holds ``count`` notifications, all read at once."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.reads: list[tuple[float | None, int | None]] = []

    def notifies(
        self, *, timeout: float | None = None, stop_after: int | None = None
    ) -> Iterator[Any]:
        self.reads.append((timeout, stop_after))
        count, self.count = self.count, 0
        yield from range(count)


def _listener(signal: WorkSignal) -> Listener:
    return Listener(connect=lambda: None, channel="c", signal=signal)  # type: ignore[arg-type,return-value]


def test_nobody_waiting_a_tick_takes_every_arrived_notification_as_one_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_listen, "_TICK_S", 0.01)
    signal = CountingSignal()
    conn = Arrived(100)
    _listener(signal)._take(conn)  # type: ignore[arg-type]
    assert conn.reads == [(0.0, 1)], "a read that does not wait: nobody waits for work"
    assert signal.notices == 1
    _listener(signal)._take(conn)  # type: ignore[arg-type]
    assert signal.notices == 1, "nothing came: no notice"


def test_while_somebody_waits_the_listener_waits_on_the_connection() -> None:
    signal = CountingSignal()
    conn = Arrived(3)
    signal.wanted.set()
    _listener(signal)._take(conn)  # type: ignore[arg-type]
    assert conn.reads == [(postgres_listen._TICK_S, 1)]
    assert signal.notices == 1


def test_wanted_is_set_exactly_while_a_thread_waits() -> None:
    signal = WorkSignal()
    assert not signal.wanted.is_set()
    inside = threading.Event()
    result: list[bool] = []

    def waiter() -> None:
        def changed() -> bool:
            inside.set()
            return False

        result.append(signal.wait(30.0, changed=changed, poll_s=0.01))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert inside.wait(10)
    assert signal.wanted.is_set()
    signal.notify()
    thread.join(10)
    assert result == [True]
    assert not signal.wanted.is_set()


def test_a_notice_given_while_nobody_waited_wakes_the_next_wait_at_once() -> None:
    signal = WorkSignal()
    assert not signal.wait(0.0)  # this thread has waited before
    _listener(signal)._take(Arrived(1))  # type: ignore[arg-type]
    assert signal.wait(30.0), "the notice of work that came while busy was kept"
