"""The journal at a glance, for dashboards and metrics: how many runs where, and what waits.

:func:`journal_counts` costs three reads of the store, whatever it holds: runs per status
(one grouped count over the status index), the run waiting longest for a person (over the
runs in review only) and the outbox's backlog (over the undelivered alerts only). A metrics
exporter turns a :class:`JournalCounts` into gauges; a web page prints its ``to_json()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from sagaguard.operator.times import iso_time
from sagaguard.vocabulary import RunStatus

if TYPE_CHECKING:
    from sagaguard.storage.base import JournalStore, RunRecord

__all__ = ["JournalCounts", "WaitingRun", "journal_counts"]


@dataclass(frozen=True, slots=True)
class WaitingRun:
    """A run waiting for a person, and since when (its last change)."""

    operation_id: str
    process: str
    version: str
    waiting_since: float

    @classmethod
    def of(cls, run: RunRecord, **rest: Any) -> Self:
        """The view of a run record in review (``rest``: a subclass's own fields)."""
        return cls(
            operation_id=run.operation_id,
            process=run.process,
            version=run.version,
            waiting_since=run.updated_at,
            **rest,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "operation_id": self.operation_id,
            "process": self.process,
            "version": self.version,
            "waiting_since": iso_time(self.waiting_since),
        }


@dataclass(frozen=True, slots=True)
class JournalCounts:
    """How many runs stand in each status, what waits for people, and what was not told."""

    runs_by_status: tuple[tuple[RunStatus, int], ...]
    """Every run status in the vocabulary's order, with its count (zero included)."""
    oldest_waiting: WaitingRun | None
    """The run in ``needs_manual_review`` changed longest ago (``None``: the queue is empty)."""
    undelivered_alerts: int
    failing_alerts: int
    """Undelivered alerts of which at least one delivery attempt failed."""
    oldest_undelivered_alert_at: float | None

    def runs(self, status: RunStatus) -> int:
        """How many runs have ``status``."""
        return dict(self.runs_by_status)[status]

    @property
    def review_queue(self) -> int:
        """How many runs wait for a person."""
        return self.runs(RunStatus.NEEDS_MANUAL_REVIEW)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "runs_by_status": {status.value: count for status, count in self.runs_by_status},
            "review_queue": self.review_queue,
            "oldest_waiting": None
            if self.oldest_waiting is None
            else self.oldest_waiting.to_json(),
            "undelivered_alerts": self.undelivered_alerts,
            "failing_alerts": self.failing_alerts,
            "oldest_undelivered_alert_at": iso_time(self.oldest_undelivered_alert_at),
        }


def journal_counts(store: JournalStore) -> JournalCounts:
    """The counts of the journal behind ``store`` (three reads, none per run)."""
    counted = store.count_runs()
    oldest = store.oldest_run(status=RunStatus.NEEDS_MANUAL_REVIEW)
    backlog = store.alert_backlog()
    return JournalCounts(
        runs_by_status=tuple((status, counted.get(status, 0)) for status in RunStatus),
        oldest_waiting=None if oldest is None else WaitingRun.of(oldest),
        undelivered_alerts=backlog.undelivered,
        failing_alerts=backlog.failing,
        oldest_undelivered_alert_at=backlog.oldest_created_at,
    )
