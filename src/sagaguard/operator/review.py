"""The review queue: every run waiting for a person, the step it waits on, why, and the choices.

A run waits in ``needs_manual_review`` when a step's outcome cannot be known, when a step
after the point of no return failed, or when undoing a step failed. Each
:class:`ReviewItem` says which step waits and why, which route was alerted and whether the
alert was delivered (from the run's audit trail), and which findings fit
(:mod:`sagaguard.operator.resolutions`); its ``to_row_json()`` is the queue's row.
Once a finding is recorded, :func:`next_move` says who acts on the run next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sagaguard.exceptions import RunNotFoundError
from sagaguard.operator.counts import WaitingRun
from sagaguard.operator.resolutions import AllowedResolution, allowed_resolutions
from sagaguard.vocabulary import EventKind, RunStatus, StepStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sagaguard.engine.resolution import Resolution
    from sagaguard.model import Process
    from sagaguard.storage.base import Event, JournalStore, RunSnapshot, StepRecord

__all__ = [
    "REVIEW_STATUSES",
    "AlertNotice",
    "NextMove",
    "ReviewItem",
    "next_move",
    "review_item",
    "review_queue",
    "waiting_step",
]

REVIEW_STATUSES = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.COMPENSATION_FAILED)
"""Step statuses that hold a run in ``needs_manual_review``, in the order they are looked for."""


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """The alert the waiting step raised, as the run's audit trail tells it."""

    alert_id: str | None
    route: str | None
    delivered: bool
    """A notifier took it (an ``alert_delivered`` event)."""
    delivery_failed: bool
    """An attempt to deliver it failed and none has succeeded since."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "alert_id": self.alert_id,
            "route": self.route,
            "delivered": self.delivered,
            "delivery_failed": self.delivery_failed,
        }


@dataclass(frozen=True, slots=True)
class ReviewItem(WaitingRun):
    """A run waiting for a person: the step, why, who was told, what they may record.

    It is the :class:`~sagaguard.operator.counts.WaitingRun` the counts name, with the step:
    the run's identity and ``waiting_since`` are read and printed the same way in both.
    """

    step_id: str | None
    step_status: StepStatus | None
    reason: str | None
    route: str | None
    """Who is told: the route journaled with the alert, else the saga's (when known)."""
    alert: AlertNotice | None
    """The alert the journal recorded for the waiting step (``None``: none recorded)."""
    resolutions: tuple[AllowedResolution, ...]

    @property
    def resolve_as(self) -> tuple[Resolution, ...]:
        """The outcomes that fit, in order."""
        return tuple(allowed.outcome for allowed in self.resolutions)

    def to_row_json(self) -> dict[str, Any]:
        """The queue's columns as a JSON-ready dict: one element of ``review list --json``."""
        return {
            # The base's method by name: a slotted dataclass has no zero-argument super().
            **WaitingRun.to_json(self),
            "step_id": self.step_id,
            "step_status": None if self.step_status is None else self.step_status.value,
            "reason": self.reason,
            "route": self.route,
            "resolve_as": [outcome.value for outcome in self.resolve_as],
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the queue's row, then the alert and what each outcome needs."""
        return {
            **self.to_row_json(),
            "alert": None if self.alert is None else self.alert.to_json(),
            "resolutions": [allowed.to_json() for allowed in self.resolutions],
        }


class NextMove(StrEnum):
    """Who acts on a run next, once a person's finding about it is recorded."""

    WORKER = "worker"
    """The run is active and was not continued: a worker will drive it on."""
    REVIEW = "review"
    """The run waits for a person again (the same step or another)."""
    NONE = "none"
    """Nobody is asked to act: the run's status says where it stands."""


def next_move(snapshot: RunSnapshot, *, continued: bool) -> NextMove:
    """Who acts next on a run just resolved; ``continued``: it was driven on right away."""
    status = snapshot.run.status
    if not continued and status.active:
        return NextMove.WORKER
    if status is RunStatus.NEEDS_MANUAL_REVIEW:
        return NextMove.REVIEW
    return NextMove.NONE


def waiting_step(snapshot: RunSnapshot) -> StepRecord | None:
    """The step a person must look at in a run that needs review (``None`` if none waits)."""
    for wanted in REVIEW_STATUSES:
        for step in snapshot.steps:
            if step.status is wanted:
                return step
    return None


def review_item(
    snapshot: RunSnapshot, events: Sequence[Event], *, process: Process | None = None
) -> ReviewItem:
    """A run waiting for a person, from its snapshot and its audit trail.

    ``process`` (the saga's model, when the caller has it) supplies the alert route and the
    external-id field for runs whose journal does not hold them.
    """
    run, step = snapshot.run, waiting_step(snapshot)
    route, id_field = _declared(process, step)
    alert: AlertNotice | None = None
    resolutions: tuple[AllowedResolution, ...] = ()
    if step is not None:
        alert = _alert_notice(events, step.step_id)
        resolutions = allowed_resolutions(snapshot, step.step_id, external_id_field=id_field)
    return ReviewItem.of(
        run,
        step_id=None if step is None else step.step_id,
        step_status=None if step is None else step.status,
        reason=(step.failure_reason if step else None) or run.reason,
        route=(alert.route if alert else None) or route,
        alert=alert,
        resolutions=resolutions,
    )


def review_queue(
    store: JournalStore, *, limit: int = 100, processes: Iterable[Process] = ()
) -> list[ReviewItem]:
    """Every run waiting for a person, newest first, at most ``limit``.

    ``processes`` are the sagas' models the caller knows (by name and version), for the
    routes the journal did not record. Reads the runs in one go, then each run's trail.
    """
    known = {(process.name, process.version): process for process in processes}
    waiting = store.list_runs(status=RunStatus.NEEDS_MANUAL_REVIEW, limit=limit)
    items = []
    for snapshot in store.load_many([run.operation_id for run in waiting]):
        run = snapshot.run
        if run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
            continue  # resolved between the two reads
        try:
            events = store.events(run.operation_id)
        except RunNotFoundError:
            continue
        items.append(review_item(snapshot, events, process=known.get((run.process, run.version))))
    return items


def _declared(process: Process | None, step: StepRecord | None) -> tuple[str | None, str | None]:
    """The alert route and the external-id field the saga declares for the step."""
    if process is None or step is None:
        return None, None
    try:
        declared = process.step(step.step_id)
    except KeyError:  # a step of another version of the process
        return None, None
    return process.alert_route(declared), declared.external_id


def _alert_notice(events: Sequence[Event], step_id: str) -> AlertNotice | None:
    """The latest alert recorded on the step's events, and how its delivery went.

    An alerting event carries ``{"route": ..., "alert_id": ...}``; the notifier appends
    ``alert_delivered`` (or, on its first failure, ``alert_failed``) naming the same id.
    """
    for raised in reversed(events):
        data = raised.data
        if raised.step_id != step_id or not isinstance(data, dict):
            continue
        route, alert_id = data.get("route"), data.get("alert_id")
        if not isinstance(route, str) and not isinstance(alert_id, str):
            continue
        settled = (
            {
                event.kind
                for event in events
                if event.seq > raised.seq
                and isinstance(event.data, dict)
                and event.data.get("alert_id") == alert_id
            }
            if isinstance(alert_id, str)
            else set()
        )
        delivered = EventKind.ALERT_DELIVERED in settled
        return AlertNotice(
            alert_id=alert_id if isinstance(alert_id, str) else None,
            route=route if isinstance(route, str) else None,
            delivered=delivered,
            delivery_failed=not delivered and EventKind.ALERT_FAILED in settled,
        )
    return None
