"""The documented bounds of every numeric flag (see :mod:`sagaguard.bounds`, where they live).

The flags share their bounds with the Python API (``Engine(lease_s=...)``), so the numbers
are written once, outside the command line.
"""

from __future__ import annotations

from sagaguard.bounds import BATCH, CONCURRENCY, INTERVAL, LEASE, LIMIT, Bound

__all__ = ["BATCH", "CONCURRENCY", "INTERVAL", "LEASE", "LIMIT", "Bound"]
