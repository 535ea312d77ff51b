"""The SQLite journal's schema: versioned, migrated atomically on open, newer files refused."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from sagaguard.exceptions import SchemaVersionError, StoreError
from sagaguard.storage import NewRun
from sagaguard.storage import migrations as schema
from sagaguard.storage.migrations import Migration, split_statements
from sagaguard.storage.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def _versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def _columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _objects(path: Path, kind: str) -> set[str]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
        return {row[0] for row in rows if not row[0].startswith("sqlite_")}


def _open(path: Path) -> None:
    SQLiteStore(path=path).close()


def test_a_new_file_gets_every_migration_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _open(path)

    shipped = [m.version for m in schema.migrations()]
    assert shipped[0] == 1
    assert _versions(path) == shipped


def test_the_schema_holds_the_journal_of_the_design(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _open(path)

    assert {"runs", "steps", "events", "schema_version"} <= _objects(path, "table")
    assert set(_columns(path, "runs")) >= {
        "operation_id", "process", "version", "input", "input_hash", "status", "owner",
        "lease_expires_at", "fencing_token", "created_at", "updated_at", "reason",
    }  # fmt: skip
    assert set(_columns(path, "steps")) >= {
        "operation_id", "step_id", "position", "status", "attempts", "last_attempt_at",
        "idempotency_key", "external_id", "result", "failure_reason", "compensation_attempts",
        "completed_seq",
    }  # fmt: skip
    assert _columns(path, "events") == [
        "operation_id", "seq", "at", "actor", "kind", "step_id", "from_status", "to_status",
        "reason", "data",
    ]  # fmt: skip
    assert {"runs_by_created", "runs_by_status"} <= _objects(path, "index")


def test_reopening_a_current_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    store = SQLiteStore(path=path)
    store.create_run(NewRun("op-1", "p", "1", {}, ("a",)), owner="w", now=T0, lease_s=1)
    store.close()
    before = _versions(path), _objects(path, "table"), _objects(path, "index")

    for _ in range(3):
        _open(path)

    assert (_versions(path), _objects(path, "table"), _objects(path, "index")) == before
    reopened = SQLiteStore(path=path)
    try:
        assert reopened.load("op-1").run.process == "p"
    finally:
        reopened.close()


def test_a_file_from_a_newer_sagaguard_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _open(path)
    newer = schema.latest_version() + 1
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
    tables = _objects(path, "table")

    with pytest.raises(SchemaVersionError, match=str(path)) as error:
        SQLiteStore(path=path)

    assert f"schema version {newer}" in str(error.value)
    assert _versions(path)[-1] == newer
    assert _objects(path, "table") == tables


def _with_extra(monkeypatch: pytest.MonkeyPatch, *extra: Migration) -> None:
    shipped = schema.migrations()
    monkeypatch.setattr(schema, "migrations", lambda: (*shipped, *extra))


def test_pending_migrations_are_applied_in_order_when_a_file_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite3"
    _open(path)
    latest = schema.latest_version()
    _with_extra(
        monkeypatch,
        Migration(latest + 1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY)",)),
        Migration(latest + 2, "note_text", ("ALTER TABLE notes ADD COLUMN body TEXT",)),
    )

    store = SQLiteStore(path=path)
    store.close()

    assert _versions(path)[-2:] == [latest + 1, latest + 2]
    assert _columns(path, "notes") == ["id", "body"]
    assert store.schema_version == latest + 2


def test_a_failing_migration_leaves_the_file_at_its_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite3"
    _open(path)
    latest = schema.latest_version()
    tables = _objects(path, "table")
    _with_extra(
        monkeypatch,
        Migration(latest + 1, "fine", ("CREATE TABLE fine (id INTEGER)",)),
        Migration(latest + 2, "broken", ("CREATE TABLE half (id INTEGER)", "NOT SQL AT ALL")),
    )

    with pytest.raises(StoreError, match=str(path)):
        SQLiteStore(path=path)

    assert _versions(path)[-1] == latest
    assert _objects(path, "table") == tables


def test_concurrent_openers_of_a_new_file_apply_the_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            _open(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert _versions(path) == [m.version for m in schema.migrations()]


def test_statements_are_split_with_trigger_bodies_kept_whole() -> None:
    script = """
    -- a comment
    CREATE TABLE t (x INTEGER); CREATE TABLE u (y TEXT);
    CREATE TRIGGER t_guard BEFORE DELETE ON t
    BEGIN
        SELECT RAISE(ABORT, 'no; really');
    END;
    """

    statements = split_statements(script)

    assert len(statements) == 3
    assert statements[0].startswith("CREATE TABLE t")
    assert statements[1] == "CREATE TABLE u (y TEXT);"
    assert statements[2].startswith("CREATE TRIGGER")
    assert statements[2].endswith("END;")
    assert "'no; really'" in statements[2]


def test_an_unterminated_statement_in_a_migration_is_an_error() -> None:
    with pytest.raises(StoreError):
        split_statements("CREATE TABLE t (x INTEGER); CREATE TABLE u (y TEXT)")


def test_the_shipped_migrations_split_into_single_statements() -> None:
    for migration in schema.migrations():
        for statement in migration.statements:
            assert sqlite3.complete_statement(statement)
            assert not statement.startswith("--")


def test_a_journal_of_schema_one_is_upgraded_with_its_runs_intact(tmp_path: Path) -> None:
    """A file written before the alert outbox keeps every run and gains the new tables."""
    path = tmp_path / "j.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY)")
        for statement in schema.migrations()[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute(
            "INSERT INTO runs VALUES ('op-old', 'p', '1', '{\"a\":1}', 'h', 'completed', NULL, "
            "NULL, 1, ?, ?, NULL, 1)",
            (T0, T0),
        )
        conn.execute(
            "INSERT INTO steps VALUES ('op-old', 's', 0, 'completed', 1, ?, 'op-old:s', 'x-1', "
            '\'{"id":"x-1"}\', NULL, 0, 1)',
            (T0,),
        )
        conn.execute(
            "INSERT INTO events VALUES ('op-old', 1, ?, 'w', 'run_created', NULL, NULL, "
            "'running', NULL, NULL)",
            (T0,),
        )

    store = SQLiteStore(path=path)
    try:
        snapshot = store.load("op-old")
        kinds = [e.kind for e in store.events("op-old")]
        due = store.claim_due_alerts(now=T0 + 10, lease_s=30)
    finally:
        store.close()

    assert _versions(path) == [m.version for m in schema.migrations()]
    assert "alerts" in _objects(path, "table")
    [step] = snapshot.steps
    assert (step.status.value, step.external_id, step.result) == ("completed", "x-1", {"id": "x-1"})
    assert step.external_id_field is None
    assert kinds == ["run_created"]
    assert due == []
