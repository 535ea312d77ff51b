"""A connection lost after a commit landed must not make the store write the same thing twice.

Found by the database-fault test: a backend killed at the wrong moment left a run with every
transition of one ``record()`` written twice (a second ``step_started`` with no attempt
counted). psycopg's pipeline syncs once more when its block ends, after ``commit()`` has
returned; if the connection dies exactly then, the error looked like "nothing committed" and
the whole transaction ran again. Here the loss is placed exactly there, by making that last
sync fail once, after the real commit.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from sagaguard.storage import NewRun, StepChange, StepStatus, Transition
from sagaguard.storage.postgres import PostgresStore
from tests import pg
from tests.pg import schema

pytestmark = pytest.mark.postgres
__all__ = ["schema"]  # the fixture, used by name


@pytest.fixture
def lost_after_commit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Arm with ``armed.append(1)``: the next pipeline that committed loses its connection."""
    armed: list[int] = []
    original = psycopg.Pipeline.__exit__

    def exit_then_lose(self: psycopg.Pipeline, *exc: Any) -> None:
        original(self, *exc)
        if armed and exc[0] is None:
            armed.clear()
            self._conn.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(psycopg.Pipeline, "__exit__", exit_then_lose)
    return armed


def test_a_record_whose_commit_landed_is_not_written_again(
    schema: str, lost_after_commit: list[int]
) -> None:
    store = PostgresStore.from_url(pg.store_url(schema))
    try:
        new = NewRun("op-1", "checkout", "1", None, ("reserve",))
        claim = store.create_run(new, owner="w", now=0.0, lease_s=30.0).claim
        assert claim is not None
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))
        lost_after_commit.append(1)
        store.record(claim, [started], now=0.0, lease_s=30.0)
        kinds = [e.kind for e in store.events("op-1")]
        assert kinds == ["run_created", "step_started"]
        assert store.load("op-1").step("reserve").attempts == 1
    finally:
        store.close()
