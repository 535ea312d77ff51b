"""What a call of ``Engine.run_detailed`` or ``Engine.submit`` returns: the run, and how it met it.

A caller that answers a duplicate request differently from a new one (the CLI's "this is the
recorded run") learns it from the call itself; loading the run first to guess is a race.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.storage.base import RunSnapshot
from sagaguard.vocabulary import Encounter, RunStatus

__all__ = ["Encounter", "RunResult"]


@dataclass(frozen=True)
class RunResult:
    """A run as one call left it, and how that call met it (see :class:`Encounter`)."""

    snapshot: RunSnapshot
    encounter: Encounter
    found: RunStatus | None = None
    """The run's status when this call found it journaled; ``None`` when this call created it."""

    @classmethod
    def existing(cls, snapshot: RunSnapshot) -> RunResult:
        """A run this call did not drive: recorded when it is over, else joined."""
        status = snapshot.run.status
        encounter = Encounter.JOINED if status.active else Encounter.RECORDED
        return cls(snapshot, encounter, found=status)
