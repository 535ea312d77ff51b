"""Backoff between attempts: exponential with full jitter, capped.

Full jitter (a uniform draw between zero and the exponential bound) spreads retries of many
runs that failed together, so a recovering provider is not hit by a synchronized wave.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 60
"""Past this many doublings every bound is the cap anyway; the power is never computed."""


def backoff_delay(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after ``attempt`` attempts (>= 1)."""
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    bound = min(max_s, base_s * (2**doublings))
    return rng.uniform(0.0, bound)


def still_owed(delay_s: float, *, since: float | None, now: float) -> float:
    """What is left of a ``delay_s`` wait that counts from the journaled time ``since``.

    A backoff is a gap between attempts, and the journal knows when the last one started:
    time a run spent without an owner (its worker crashed, then its lease ran out) has
    already been waited. Never more than ``delay_s``, so a clock behind the journal's
    cannot make the wait longer.
    """
    if since is None:
        return delay_s
    return min(delay_s, max(0.0, since + delay_s - now))
