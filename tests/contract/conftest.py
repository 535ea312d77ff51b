"""Store factories for the contract suite: every test here runs once per registered backend.

To run the suite against a new backend, append one :class:`StoreFactory` to
``STORE_FACTORIES`` (with ``marks=(pytest.mark.postgres,)`` and a ``skip_reason`` when it needs
a server); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagaguard.storage import JournalStore
from sagaguard.storage.memory import InMemoryStore
from sagaguard.storage.sqlite import SQLiteStore


@dataclass(frozen=True)
class StoreFactory:
    """How to open a fresh, empty store of one backend for one test."""

    name: str
    open: Callable[[Path], JournalStore]
    """Open an empty store; the test's ``tmp_path`` is there for file-backed stores."""
    marks: tuple[pytest.MarkDecorator, ...] = ()
    skip_reason: Callable[[], str | None] = lambda: None
    """Why this backend cannot run here (None: it can)."""


STORE_FACTORIES: list[StoreFactory] = [
    StoreFactory("memory", lambda tmp_path: InMemoryStore()),
    StoreFactory("sqlite", lambda tmp_path: SQLiteStore(path=tmp_path / "journal.sqlite3")),
]


@pytest.fixture(
    params=[pytest.param(f, id=f.name, marks=f.marks) for f in STORE_FACTORIES],
)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The backend under test."""
    factory: StoreFactory = request.param
    reason = factory.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return factory


@pytest.fixture
def store(store_factory: StoreFactory, tmp_path: Path) -> Iterator[JournalStore]:
    """A fresh, empty store of the backend under test, closed afterwards."""
    opened = store_factory.open(tmp_path)
    try:
        yield opened
    finally:
        opened.close()
