"""``sagaguard runs prune``: finished runs past a cutoff leave the SQLite journal, nothing else.

The event log's append-only trigger still holds for every run that stays: an event may be
deleted only after its run's row is gone, which only prune does.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sagaguard.cli import app
from sagaguard.storage import NewRun, RunStatus, Transition
from sagaguard.storage.sqlite import SQLiteStore

DAY = 86_400.0


def _run(store: SQLiteStore, operation_id: str, status: RunStatus, *, at: float) -> None:
    claim = store.create_run(
        NewRun(operation_id, "checkout", "1", {"n": 1}, ("reserve",)),
        owner="w",
        now=at,
        lease_s=30.0,
    ).claim
    assert claim is not None
    if status is not RunStatus.RUNNING:
        finish = Transition(f"run_{status.value}", run_status=status)
        store.record(claim, [finish], now=at, lease_s=30.0, release=True)


@pytest.fixture
def db(tmp_path: Path) -> str:
    now = time.time()
    store = SQLiteStore(path=tmp_path / "journal.sqlite3")
    try:
        _run(store, "old-done", RunStatus.COMPLETED, at=now - 40 * DAY)
        _run(store, "old-undone", RunStatus.COMPENSATED, at=now - 40 * DAY)
        _run(store, "old-review", RunStatus.NEEDS_MANUAL_REVIEW, at=now - 40 * DAY)
        _run(store, "old-running", RunStatus.RUNNING, at=now - 40 * DAY)
        _run(store, "new-done", RunStatus.COMPLETED, at=now - 1 * DAY)
    finally:
        store.close()
    return f"sqlite:///{tmp_path / 'journal.sqlite3'}"


def _left(db: str) -> set[str]:
    store = SQLiteStore.from_url(db)
    try:
        return {run.operation_id for run in store.list_runs()}
    finally:
        store.close()


def test_prune_removes_finished_runs_older_than_the_age_and_says_how_many(db: str) -> None:
    result = CliRunner().invoke(app, ["runs", "prune", "--older-than", "30d", "--db", db])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"pruned 2 finished runs older than 30d from {db}\n"
    assert _left(db) == {"old-review", "old-running", "new-done"}


def test_prune_with_a_status_removes_only_that_status(db: str) -> None:
    args = ["runs", "prune", "--older-than", "30d", "--status", "compensated", "--db", db]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.stderr
    assert "pruned 1 compensated run older than 30d" in result.stdout
    assert _left(db) == {"old-done", "old-review", "old-running", "new-done"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30 days"], "--older-than '30 days' is not an age"),
        (["--older-than", "0d"], "must be more than 0"),
        (
            ["--older-than", "30d", "--status", "needs_manual_review"],
            "needs_manual_review are never pruned",
        ),
    ],
    ids=["bad_age", "zero_age", "review_status"],
)
def test_bad_prune_arguments_exit_2_with_one_line_and_remove_nothing(
    db: str, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["runs", "prune", *args, "--db", db])

    assert result.exit_code == 2, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    assert message in line
    assert len(_left(db)) == 5


def test_the_event_log_of_a_run_that_stays_still_refuses_deletes(db: str) -> None:
    path = db.removeprefix("sqlite:///")
    CliRunner().invoke(app, ["runs", "prune", "--older-than", "30d", "--db", db])

    with closing(sqlite3.connect(path)) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM events WHERE operation_id = 'new-done'")
    with closing(sqlite3.connect(path)) as conn:
        pruned = conn.execute("SELECT COUNT(*) FROM events WHERE operation_id = 'old-done'")
        assert pruned.fetchone()[0] == 0
