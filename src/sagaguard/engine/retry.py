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
