"""The read side for people: runs, the review queue, allowed resolutions, counts.

Pure functions over a :class:`~sagaguard.storage.base.JournalStore` (a read-only one will
do: ``open_store(url, read_only=True)``) that return frozen view models. They never print
and never escape: the command line escapes controls, a web page HTML-escapes, a metrics
exporter reads numbers. Every model's ``to_json()`` is the JSON ``--json`` prints.

    runs         RunRow, RunDetail (StepView, EventView); list_runs, run_detail
    oddities     what a run's status alone hides (a best-effort step that did not succeed)
    review       ReviewItem (AlertNotice); review_queue, review_item, waiting_step;
                 NextMove, next_move (who acts once a finding is recorded)
    resolutions  AllowedResolution; allowed_resolutions (the engine's rules, asked)
    counts       JournalCounts; journal_counts (three reads, none per run)
    narration    Narrator: each journal event in one plain-English line
    times        iso_time, clock_time

Writing stays with the engine (``Engine.resolve`` records a person's finding). Names are
imported on first use (:mod:`sagaguard.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagaguard.lazy import lazy_exports

if TYPE_CHECKING:
    from sagaguard.operator.counts import JournalCounts, WaitingRun, journal_counts
    from sagaguard.operator.narration import Narrator, narrate_events
    from sagaguard.operator.oddities import Oddity, OddityKind, oddities_of
    from sagaguard.operator.resolutions import AllowedResolution, allowed_resolutions
    from sagaguard.operator.review import (
        REVIEW_STATUSES,
        AlertNotice,
        NextMove,
        ReviewItem,
        next_move,
        review_item,
        review_queue,
        waiting_step,
    )
    from sagaguard.operator.runs import (
        EventView,
        RunDetail,
        RunRow,
        StepView,
        list_runs,
        run_detail,
    )
    from sagaguard.operator.times import clock_time, iso_time

__all__ = [
    "REVIEW_STATUSES",
    "AlertNotice",
    "AllowedResolution",
    "EventView",
    "JournalCounts",
    "Narrator",
    "NextMove",
    "Oddity",
    "OddityKind",
    "ReviewItem",
    "RunDetail",
    "RunRow",
    "StepView",
    "WaitingRun",
    "allowed_resolutions",
    "clock_time",
    "iso_time",
    "journal_counts",
    "list_runs",
    "narrate_events",
    "next_move",
    "oddities_of",
    "review_item",
    "review_queue",
    "run_detail",
    "waiting_step",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "JournalCounts": "sagaguard.operator.counts",
        "WaitingRun": "sagaguard.operator.counts",
        "journal_counts": "sagaguard.operator.counts",
        "Narrator": "sagaguard.operator.narration",
        "narrate_events": "sagaguard.operator.narration",
        "Oddity": "sagaguard.operator.oddities",
        "OddityKind": "sagaguard.operator.oddities",
        "oddities_of": "sagaguard.operator.oddities",
        "AllowedResolution": "sagaguard.operator.resolutions",
        "allowed_resolutions": "sagaguard.operator.resolutions",
        "REVIEW_STATUSES": "sagaguard.operator.review",
        "AlertNotice": "sagaguard.operator.review",
        "NextMove": "sagaguard.operator.review",
        "ReviewItem": "sagaguard.operator.review",
        "next_move": "sagaguard.operator.review",
        "review_item": "sagaguard.operator.review",
        "review_queue": "sagaguard.operator.review",
        "waiting_step": "sagaguard.operator.review",
        "EventView": "sagaguard.operator.runs",
        "RunDetail": "sagaguard.operator.runs",
        "RunRow": "sagaguard.operator.runs",
        "StepView": "sagaguard.operator.runs",
        "list_runs": "sagaguard.operator.runs",
        "run_detail": "sagaguard.operator.runs",
        "clock_time": "sagaguard.operator.times",
        "iso_time": "sagaguard.operator.times",
    },
)
