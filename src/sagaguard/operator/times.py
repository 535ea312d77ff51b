"""Times as the read side gives them out: ISO 8601 in UTC, with milliseconds.

The journal keeps seconds since the epoch; views keep them too (a dashboard subtracts them),
and their JSON writes each as ``2025-06-01T12:00:00.123Z``, so a person, a script and a web
page read the same instant.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["clock_time", "iso_time"]


def iso_time(at: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds; ``None`` stays ``None``.

    A time no calendar holds (an infinite lease an older version stored) is shown as the
    first or last moment ISO 8601 can write, so one absurd row never hides the journal.
    """
    if at is None or math.isnan(at):
        return None
    if not _EARLIEST <= at <= _LATEST:
        return _LAST_MOMENT if at > 0 else _FIRST_MOMENT
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_FIRST_MOMENT = "0001-01-01T00:00:00.000Z"
_LAST_MOMENT = "9999-12-31T23:59:59.999Z"
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def clock_time(at: float) -> str:
    """The time of day in UTC with milliseconds (``12:00:00.123``): short enough for a table."""
    text = iso_time(at) or ""
    return text[11:23]
