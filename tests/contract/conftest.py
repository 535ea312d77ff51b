"""Store factories for the contract suite: every test here runs once per registered backend.

To run the suite against a new backend, append one :class:`StoreFactory` to
``STORE_FACTORIES`` (with ``marks=(pytest.mark.postgres,)`` and a ``skip_reason`` when it needs
a server); nothing else changes. PostgreSQL runs on the caller's (fake) clock here, in a
schema of its own per store, dropped when the store closes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagaguard.storage import JournalStore
from sagaguard.storage.memory import InMemoryStore
from sagaguard.storage.sqlite import SQLiteStore
from tests import pg


@dataclass(frozen=True)
class StoreFactory:
    """How to open a fresh, empty store of one backend for one test."""

    name: str
    open: Callable[[Path], JournalStore]
    """Open an empty store; the test's ``tmp_path`` is there for file-backed stores."""
    marks: tuple[pytest.MarkDecorator, ...] = ()
    skip_reason: Callable[[], str | None] = lambda: None
    """Why this backend cannot run here (None: it can)."""


def _postgres(tmp_path: Path) -> JournalStore:
    """A PostgreSQL store on the caller's clock in a fresh schema, dropped on close."""
    from sagaguard.storage.postgres import PostgresStore

    name = pg.fresh_schema()

    class DisposableStore(PostgresStore):
        def close(self) -> None:
            super().close()
            pg.drop_schema(name)

    return DisposableStore.from_url(pg.store_url(name, clock="caller", pool_size="4"))


STORE_FACTORIES: list[StoreFactory] = [
    StoreFactory("memory", lambda tmp_path: InMemoryStore()),
    StoreFactory("sqlite", lambda tmp_path: SQLiteStore(path=tmp_path / "journal.sqlite3")),
    StoreFactory("postgres", _postgres, marks=(pytest.mark.postgres,), skip_reason=pg.unavailable),
]


@pytest.fixture(
    params=[pytest.param(f, id=f.name, marks=f.marks) for f in STORE_FACTORIES],
)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The backend under test."""
    factory: StoreFactory = request.param
    if factory.skip_reason() is not None:
        pg.require()  # skips with the reason, or fails where PostgreSQL is required
    return factory


@pytest.fixture
def store(store_factory: StoreFactory, tmp_path: Path) -> Iterator[JournalStore]:
    """A fresh, empty store of the backend under test, closed afterwards."""
    opened = store_factory.open(tmp_path)
    try:
        yield opened
    finally:
        opened.close()
