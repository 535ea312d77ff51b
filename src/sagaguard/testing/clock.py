"""A clock for tests: time moves only when told to, or when the engine sleeps.

    clock = FakeClock()
    engine = Engine(store="memory://", clock=clock, sleep=clock.sleep)

Retry windows, leases and settle delays then pass at once, and every sleep is kept.
"""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds since the epoch that only :meth:`advance` and :meth:`sleep` move."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        """Every sleep the engine asked for, in order."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass (a lease expiring, a provider catching up)."""
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """The engine's sleep: note it and let the time pass at once."""
        self.sleeps.append(seconds)
        self.now += seconds
