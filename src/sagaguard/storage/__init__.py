"""Journal stores, picked by URL.

``memory://`` (tests), ``sqlite:///path/to/file.sqlite3`` (the embedded default) and
``postgresql://user@host/db?schema=sagaguard`` (many workers; the ``sagaguard[postgres]``
extra). Backends are imported lazily so a driver is needed only when used, and so are the
journal's records (:mod:`sagaguard.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagaguard.exceptions import UnsupportedStoreError
from sagaguard.lazy import lazy_exports

if TYPE_CHECKING:
    from sagaguard.storage.base import (
        Claim,
        CreateResult,
        Event,
        JournalStore,
        NewRun,
        RunRecord,
        RunSnapshot,
        StepChange,
        StepRecord,
        Transition,
    )
    from sagaguard.vocabulary import RunStatus, StepStatus

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

# The journal's records are imported on first use: `--help` and `plan` never need them.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            (
                "Claim",
                "CreateResult",
                "Event",
                "JournalStore",
                "NewRun",
                "RunRecord",
                "RunSnapshot",
                "StepChange",
                "StepRecord",
                "Transition",
            ),
            "sagaguard.storage.base",
        ),
        "RunStatus": "sagaguard.vocabulary",
        "StepStatus": "sagaguard.vocabulary",
    },
)


def open_store(url: str = DEFAULT_URL, *, read_only: bool = False) -> JournalStore:
    """Open the journal store named by ``url`` (``UnsupportedStoreError`` for other schemes).

    ``read_only`` is for commands that only look: the journal must exist and be a sagaguard
    journal of this version; it is never created, migrated or switched to another journal
    mode, and every write raises ``StoreError``. A journal file the process may not write
    (a copy, a backup, another user's file) opens this way too.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        from sagaguard.storage.memory import InMemoryStore

        return InMemoryStore(url=url)
    if scheme == "sqlite":
        from sagaguard.storage.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, read_only=read_only)
    if scheme in ("postgresql", "postgres"):
        try:
            from sagaguard.storage.postgres import PostgresStore
        except ImportError as exc:
            raise UnsupportedStoreError(
                f"a postgresql:// journal needs psycopg 3 and psycopg_pool ({exc.name} is "
                "missing): pip install 'sagaguard[postgres]'"
            ) from exc
        return PostgresStore.from_url(url, read_only=read_only)
    raise UnsupportedStoreError(
        f"unsupported journal URL {url!r}: use memory://, sqlite:///path/to/journal.sqlite3 "
        "or postgresql://user@host/dbname"
    )
