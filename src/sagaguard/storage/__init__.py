"""Journal stores, picked by URL.

``memory://`` (tests), ``sqlite:///path/to/file.sqlite3`` (the embedded default) and, later,
``postgresql://...``. Backends are imported lazily so a driver is needed only when used.
"""

from __future__ import annotations

from sagaguard.exceptions import UnsupportedStoreError
from sagaguard.storage.base import (
    Claim,
    CreateResult,
    Event,
    JournalStore,
    NewRun,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepChange,
    StepRecord,
    StepStatus,
    Transition,
)

DEFAULT_URL = "sqlite:///sagaguard.sqlite3"

__all__ = [
    "DEFAULT_URL",
    "Claim",
    "CreateResult",
    "Event",
    "JournalStore",
    "NewRun",
    "RunRecord",
    "RunSnapshot",
    "RunStatus",
    "StepChange",
    "StepRecord",
    "StepStatus",
    "Transition",
    "open_store",
]


def open_store(url: str = DEFAULT_URL) -> JournalStore:
    """Open the journal store named by ``url`` (``UnsupportedStoreError`` for other schemes)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        from sagaguard.storage.memory import InMemoryStore

        return InMemoryStore(url=url)
    if scheme == "sqlite":
        from sagaguard.storage.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    raise UnsupportedStoreError(
        f"unsupported journal URL {url!r}: use memory:// or sqlite:///path/to/journal.sqlite3"
    )
