"""The SQLite journal as a file: durable across reopen, WAL with synchronous=FULL, clear errors."""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
from contextlib import closing
from pathlib import Path

import pytest

from sagaguard.exceptions import StaleOwnerError, StoreError
from sagaguard.storage import NewRun, RunStatus, StepChange, StepStatus, Transition, open_store
from sagaguard.storage.sqlite import SQLiteStore

T0 = 1_700_000_000.0
LEASE = 30.0


def _new(operation_id: str = "op-1") -> NewRun:
    return NewRun(
        operation_id, "checkout", "1", {"amount": 42, "who": "Zoë"}, ("reserve", "charge")
    )


def _raw(path: Path) -> sqlite3.Connection:
    """A plain driver connection, to look at the file the way another program would."""
    return sqlite3.connect(path, isolation_level=None)


def test_everything_written_is_there_after_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    claim = store.create_run(_new(), owner="worker-a", now=T0, lease_s=LEASE).claim
    assert claim is not None
    store.record(
        claim,
        [
            Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1)),
            Transition(
                "step_completed",
                StepChange("reserve", StepStatus.COMPLETED, result={"hold": "h"}, completed_seq=1),
            ),
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )
    snapshot, events = store.load("op-1"), store.events("op-1")
    store.close()

    reopened = SQLiteStore(path=path)
    try:
        assert reopened.load("op-1") == snapshot
        assert reopened.events("op-1") == events
        assert reopened.list_runs() == [snapshot.run]
        taken = reopened.claim("op-1", owner="worker-b", now=T0 + LEASE + 2, lease_s=LEASE)
        assert taken.fencing_token == 2
        with pytest.raises(StaleOwnerError):
            reopened.heartbeat(claim, now=T0 + LEASE + 3, lease_s=LEASE)
    finally:
        reopened.close()


def test_the_journal_runs_in_wal_mode_with_synchronous_full_by_default(tmp_path: Path) -> None:
    store = SQLiteStore(path=tmp_path / "j.sqlite3")
    try:
        details = store.info().details
        assert store.info().backend == "sqlite"
        assert (details["journal_mode"], details["synchronous"]) == ("WAL", "FULL")
        assert details["path"] == str(tmp_path / "j.sqlite3")
    finally:
        store.close()
    with closing(_raw(tmp_path / "j.sqlite3")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_synchronous_normal_can_be_chosen_by_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/j.sqlite3?synchronous=normal")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.info().details["synchronous"] == "NORMAL"
        assert store.url == f"sqlite:///{tmp_path}/j.sqlite3?synchronous=normal"
    finally:
        store.close()


def test_every_thread_gets_the_configured_durability(tmp_path: Path) -> None:
    store = SQLiteStore(path=tmp_path / "j.sqlite3", synchronous="NORMAL")
    seen: list[str] = []
    try:
        thread = threading.Thread(target=lambda: seen.append(store.info().details["synchronous"]))
        thread.start()
        thread.join()
    finally:
        store.close()
    assert seen == ["NORMAL"]


def test_a_relative_url_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    store = SQLiteStore.from_url("sqlite:///sub/journal.db")
    try:
        assert store.path == str(tmp_path / "sub" / "journal.db")
        assert (tmp_path / "sub" / "journal.db").exists()
    finally:
        store.close()


def test_an_absolute_url_has_four_slashes(tmp_path: Path) -> None:
    store = SQLiteStore.from_url(f"sqlite:///{tmp_path}/abs.db")
    try:
        assert store.path == str(tmp_path / "abs.db")
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite://host/journal.db",
        "sqlite:///journal.db?synchronous=SOMETIMES",
        "sqlite:///journal.db?fsync=yes",
        "sqlite:///journal.db?busy_timeout_s=soon",
        "sqlite:///:memory:",
    ],
)
def test_a_malformed_url_is_a_store_error_naming_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as error:
        SQLiteStore.from_url(url)
    assert error.type is StoreError
    assert not (tmp_path / "journal.db").exists()


def test_a_missing_directory_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "journal.sqlite3"

    with pytest.raises(StoreError, match=str(tmp_path / "nowhere")):
        SQLiteStore(path=path)


def test_a_renamed_directory_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    store = SQLiteStore(path=tmp_path / "data" / "journal.sqlite3")
    store.create_run(_new(), owner="w", now=T0, lease_s=LEASE)
    (tmp_path / "data").rename(tmp_path / "moved")
    errors: list[BaseException] = []

    def use_from_a_new_thread() -> None:
        try:
            store.load("op-1")
        except BaseException as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=use_from_a_new_thread)
        thread.start()
        thread.join()
    finally:
        store.close()
    [error] = errors
    assert isinstance(error, StoreError)
    assert str(tmp_path / "data" / "journal.sqlite3") in str(error)


def test_a_deleted_file_is_not_silently_recreated_empty(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    errors: list[BaseException] = []

    def use_from_a_new_thread() -> None:
        try:
            store.list_runs()
        except BaseException as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=use_from_a_new_thread)
        thread.start()
        thread.join()
    finally:
        store.close()
    [error] = errors
    assert isinstance(error, StoreError)
    assert str(path) in str(error)
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match=str(path)) as error:
        SQLiteStore(path=path)
    assert isinstance(error.value.__cause__, sqlite3.DatabaseError)


def test_a_write_blocked_past_the_busy_timeout_is_a_store_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path, busy_timeout_s=0.05)
    claim = store.create_run(_new(), owner="w", now=T0, lease_s=LEASE).claim
    assert claim is not None
    before = store.load("op-1"), store.events("op-1")
    other = _raw(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as error:
            store.record(
                claim,
                [Transition("step_started", StepChange("reserve", StepStatus.STARTED))],
                now=T0 + 1,
                lease_s=LEASE,
            )
        assert isinstance(error.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()
    try:
        assert (store.load("op-1"), store.events("op-1")) == before
        store.record(
            claim, [Transition("run_done", run_status=RunStatus.COMPLETED)], now=T0 + 2, lease_s=1
        )
        assert store.load("op-1").run.status is RunStatus.COMPLETED
    finally:
        store.close()


def test_the_event_log_refuses_updates_and_deletes_even_from_raw_sql(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    store.create_run(_new(), owner="w", now=T0, lease_s=LEASE)
    store.close()

    with closing(_raw(path)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET actor = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
        assert conn.execute("SELECT actor FROM events").fetchall() == [("w",)]


def test_payloads_are_stored_as_readable_json_text(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    store.create_run(_new(), owner="w", now=T0, lease_s=LEASE)
    store.close()

    with closing(_raw(path)) as conn:
        [(text, kind)] = conn.execute("SELECT input, typeof(input) FROM runs").fetchall()
    assert kind == "text"
    assert text == '{"amount":42,"who":"Zoë"}'


def test_a_store_in_a_forked_child_uses_its_own_connection(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    store = SQLiteStore(path=tmp_path / "journal.sqlite3")
    store.create_run(_new(), owner="parent", now=T0, lease_s=LEASE)
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking a process that has threads; this child only claims.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: claim the run, report, and leave without running pytest's exit
        code = 1
        try:
            claim = store.claim("op-1", owner="child", now=T0 + LEASE + 1, lease_s=LEASE)
            os.write(write, str(claim.fencing_token).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    reported = os.read(read, 16)
    os.close(read)
    try:
        assert os.waitstatus_to_exitcode(status) == 0
        assert reported == b"2"
        assert store.load("op-1").run.owner == "child"
    finally:
        store.close()


def _open_files(path: Path) -> int:
    """How many descriptors this process holds on ``path`` (Linux /proc)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path))


def test_open_files_do_not_grow_with_the_threads_that_used_the_store(tmp_path: Path) -> None:
    """Each thread's connection is closed when the thread ends (a worker may use many)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to count open files")
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    store.create_run(_new(), owner="w", now=T0, lease_s=LEASE)

    def use_from_threads(count: int) -> int:
        for _ in range(count):
            thread = threading.Thread(target=store.load, args=("op-1",))
            thread.start()
            thread.join()
        return _open_files(path)

    try:
        after_a_few = use_from_threads(3)
        assert use_from_threads(30) == after_a_few
    finally:
        store.close()
    assert _open_files(path) == 0


def test_a_journal_deleted_while_a_run_goes_on_refuses_the_next_write(tmp_path: Path) -> None:
    """Writing on to an unlinked file would report `completed` for a run nobody can find."""
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    try:
        claim = store.create_run(_new(), owner="w", now=T0, lease_s=LEASE).claim
        assert claim is not None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED))

        with pytest.raises(StoreError, match="was deleted while it was open"):
            store.record(claim, [started], now=T0 + 1, lease_s=LEASE)
        with pytest.raises(StoreError, match="was deleted while it was open"):
            store.create_run(_new("op-2"), owner="w", now=T0 + 1, lease_s=LEASE)
    finally:
        store.close()
    assert not path.exists()


def test_a_journal_replaced_by_another_file_refuses_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    try:
        claim = store.create_run(_new(), owner="w", now=T0, lease_s=LEASE).claim
        assert claim is not None
        SQLiteStore(path=tmp_path / "other.sqlite3").close()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp_path / "other.sqlite3", path)

        with pytest.raises(StoreError, match="was replaced by another file"):
            store.heartbeat(claim, now=T0 + 1, lease_s=LEASE)
    finally:
        store.close()
    reopened = SQLiteStore(path=path)
    try:
        assert reopened.list_runs() == [], "nothing was written into the replacement"
    finally:
        reopened.close()


def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A mistyped --db must not add sagaguard's tables or switch someone's file to WAL."""
    path = tmp_path / "app.db"
    with closing(_raw(path)) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    before = path.read_bytes()

    with pytest.raises(StoreError, match=r"app\.db is not a sagaguard journal.*customers"):
        SQLiteStore(path=path)

    assert path.read_bytes() == before
    with closing(_raw(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
