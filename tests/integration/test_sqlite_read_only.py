"""A journal opened read-only: never created, migrated or changed; readable where unwritable.

``open_store(url, read_only=True)`` is what ``runs list``, ``runs show`` and ``review list``
use. Each test checks the file's bytes before and after, so "never writes" is measured, not
assumed; the unwritable cases run the reader without the power to write (as root, with
``setpriv`` dropping the capability that ignores file permissions).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sagaguard.cli import app
from sagaguard.exceptions import StoreError
from sagaguard.storage import NewRun, open_store
from sagaguard.storage.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def _journal_with_one_run(path: Path) -> None:
    store = SQLiteStore(path=path)
    try:
        store.create_run(
            NewRun("op-1", "checkout", "1", {"amount": 42}, ("reserve", "charge")),
            owner="w",
            now=T0,
            lease_s=30.0,
        )
    finally:
        store.close()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_a_read_only_store_reads_the_journal_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    _journal_with_one_run(path)
    before = _files(tmp_path)

    store = open_store(f"sqlite:///{path}", read_only=True)
    try:
        [run] = store.list_runs()
        assert run.operation_id == "op-1"
        assert [e.kind for e in store.events("op-1")] == ["run_created"]
        with pytest.raises(StoreError, match="open read-only"):
            store.claim("op-1", owner="reader", now=T0 + 60, lease_s=30.0)
        with pytest.raises(StoreError, match="open read-only"):
            store.claim_due_alerts(now=T0, lease_s=30.0)
    finally:
        store.close()

    # SQLite may leave a WAL reader's -shm beside the file; the journal itself is untouched.
    assert _files(tmp_path)["journal.sqlite3"] == before["journal.sqlite3"]


def test_a_missing_journal_is_not_created_by_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.sqlite3"

    with pytest.raises(StoreError, match="no journal at"):
        open_store(f"sqlite:///{path}", read_only=True)

    assert list(tmp_path.iterdir()) == []


def test_another_applications_database_is_refused_by_a_reader_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        conn.commit()
    before = _files(tmp_path)

    with pytest.raises(StoreError, match=r"is not a sagaguard journal \(its tables are invoices\)"):
        open_store(f"sqlite:///{path}", read_only=True)

    assert _files(tmp_path) == before


def test_an_empty_file_is_not_a_journal_to_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()

    with pytest.raises(StoreError, match=r"is not a sagaguard journal \(it is empty\)"):
        open_store(f"sqlite:///{path}", read_only=True)

    assert path.read_bytes() == b""


def test_a_journal_of_an_older_schema_is_not_migrated_by_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _journal_with_one_run(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DELETE FROM schema_version WHERE version > 1")
        conn.commit()
    before = path.read_bytes()

    with pytest.raises(StoreError, match="schema version 1, older than"):
        open_store(f"sqlite:///{path}", read_only=True)

    assert path.read_bytes() == before


_LIST = """
import sys
from sagaguard.storage import open_store
store = open_store(sys.argv[1], read_only=True)
print(",".join(run.operation_id for run in store.list_runs()))
"""


def _without_write_permission() -> list[str]:
    """A command prefix that runs a process bound by file permissions, as another user is.

    Root ignores permissions (CAP_DAC_OVERRIDE); ``setpriv`` drops that for the child.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory unwritable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def _run_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Python with ``args``, bound by file permissions."""
    return subprocess.run(
        [*_without_write_permission(), sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("with_wal_files", [True, False], ids=["wal_files_left", "copy_alone"])
def test_a_journal_in_a_directory_the_reader_cannot_write_can_be_listed(
    tmp_path: Path, with_wal_files: bool
) -> None:
    """Another user's journal, or a backup copy in a read-only directory (no -shm possible)."""
    directory = tmp_path / "backup"
    directory.mkdir()
    _journal_with_one_run(directory / "journal.sqlite3")
    if not with_wal_files:
        for suffix in ("-wal", "-shm"):
            Path(f"{directory / 'journal.sqlite3'}{suffix}").unlink(missing_ok=True)
    for entry in directory.iterdir():
        entry.chmod(0o444)
    directory.chmod(0o555)
    tmp_path.chmod(0o755)
    before = _files(directory)
    try:
        done = _run_unprivileged("-c", _LIST, f"sqlite:///{directory / 'journal.sqlite3'}")
    finally:
        directory.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "op-1"
    assert _files(directory) == before


@pytest.mark.parametrize(
    "command",
    [("runs", "list"), ("runs", "show", "op-1"), ("review", "list")],
    ids=["runs_list", "runs_show", "review_list"],
)
def test_read_commands_refuse_another_applications_database_and_leave_it_alone(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """``runs list --db sqlite:///someone-elses.db`` used to add five tables and switch to WAL."""
    path = tmp_path / "someone-elses.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.commit()
    before = _files(tmp_path)

    result = CliRunner().invoke(app, [*command, "--db", f"sqlite:///{path}"])

    assert result.exit_code == 2, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    assert "someone-elses.db is not a sagaguard journal (its tables are orders)" in line
    assert _files(tmp_path) == before


def test_read_commands_list_a_journal_they_may_not_write(tmp_path: Path) -> None:
    directory = tmp_path / "copy"
    directory.mkdir()
    _journal_with_one_run(directory / "journal.sqlite3")
    for suffix in ("-wal", "-shm"):
        Path(f"{directory / 'journal.sqlite3'}{suffix}").unlink(missing_ok=True)
    (directory / "journal.sqlite3").chmod(0o444)
    directory.chmod(0o555)
    try:
        url = f"sqlite:///{directory / 'journal.sqlite3'}"
        done = _run_unprivileged("-m", "sagaguard", "runs", "list", "--json", "--db", url)
    finally:
        directory.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert [row["operation_id"] for row in json.loads(done.stdout)] == ["op-1"]
