"""The read side's views as the dicts the command line prints: tables render them, ``--json``
prints them as they are, so the two can never disagree.

The views are :mod:`sagaguard.operator`'s (frozen models, one ``to_json()`` each); this
module only names the ones the commands share: :func:`run_view` (after ``run`` and
``review resolve``) and the demo's :class:`~sagaguard.operator.narration.Narrator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagaguard.operator.narration import Narrator, narrate_events
from sagaguard.operator.runs import RunDetail

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sagaguard.storage.base import Event, RunSnapshot

__all__ = ["Narrator", "narrate_events", "run_view"]


def run_view(snapshot: RunSnapshot, events: Sequence[Event] | None = None) -> dict[str, Any]:
    """A whole run as ``runs show --json`` prints it; without ``events``, no ``events`` key."""
    return RunDetail.of(snapshot, events).to_json()
