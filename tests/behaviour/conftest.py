"""Fixtures for the engine's behaviour suite: it runs once per journal store backend.

The stores come from the contract suite's registry, so a backend added there (PostgreSQL)
runs this suite too without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sagaguard.engine import Engine, RecordingNotifier
from sagaguard.storage import JournalStore
from tests import pg
from tests.behaviour.sagas import FakeClock
from tests.contract.conftest import STORE_FACTORIES, StoreFactory


@pytest.fixture(params=[pytest.param(f, id=f.name, marks=f.marks) for f in STORE_FACTORIES])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalStore]:
    """A fresh journal of the backend under test."""
    factory: StoreFactory = request.param
    if factory.skip_reason() is not None:
        pg.require()  # skips with the reason, or fails where PostgreSQL is required
    opened = factory.open(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves; sleeping advances it instead of waiting."""
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    """Collects the alerts the engine sends."""
    return RecordingNotifier()


@pytest.fixture
def engine(store: JournalStore, clock: FakeClock, notifier: RecordingNotifier) -> Iterator[Engine]:
    """An engine on the store under test with a fake clock and a recording notifier."""
    with Engine(
        store=store, clock=clock, sleep=clock.sleep, notifier=notifier, owner="engine-a", lease_s=30
    ) as running:
        yield running
