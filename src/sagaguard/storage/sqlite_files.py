"""What a SQLite journal file must be: a sagaguard journal, and the same file all along.

A store remembers which file it opened (device and inode) and keeps a descriptor of it. A
file deleted or replaced while the store is open would take every later commit with it,
silently: the next write is refused instead. The check before each write is one ``fstat``
of that descriptor (its link count drops to 0 when the name is unlinked or renamed over),
cheaper than resolving the path again; a new connection compares the path's inode.
A file opened read-only must already be a sagaguard journal of this
version, since a reader may neither create nor migrate it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from sagaguard.exceptions import SchemaVersionError, StoreError
from sagaguard.storage.migrations import current_version, latest_version

__all__ = ["FileGuard", "check_journal", "check_not_foreign", "check_same_file", "identity"]


def identity(path: str) -> tuple[int, int]:
    """The file's device and inode: what tells it apart from a file put in its place."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def check_same_file(path: str, opened: tuple[int, int]) -> None:
    """``StoreError`` unless ``path`` is still the file the store opened."""
    try:
        now = identity(path)
    except FileNotFoundError:
        raise StoreError(
            f"journal {path} was deleted while it was open: nothing more is written to it "
            "(restore the file, or start over with a new journal)"
        ) from None
    if now != opened:
        raise StoreError(
            f"journal {path} was replaced by another file while it was open: nothing more is "
            "written (reopen the journal to use the new file)"
        )


class FileGuard:
    """A descriptor of the journal file, held to tell at once if the file lost its name."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        found = os.fstat(self.fd)
        self.identity = (found.st_dev, found.st_ino)

    def check(self) -> None:
        """``StoreError`` if the file was deleted or replaced since it was opened."""
        if os.fstat(self.fd).st_nlink == 0:
            check_same_file(self.path, self.identity)
            raise StoreError(f"journal {self.path} was deleted while it was open")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def check_not_foreign(conn: sqlite3.Connection, path: str) -> None:
    """``StoreError`` for a database that holds tables but no sagaguard schema.

    Checked before the journal mode is switched or a migration runs, so pointing sagaguard at
    another application's database changes nothing in it.
    """
    tables = _tables(conn)
    if tables and "schema_version" not in tables:
        raise StoreError(
            f"{path} is not a sagaguard journal (its tables are {', '.join(sorted(tables))})"
        )


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def check_journal(conn: sqlite3.Connection, path: str) -> int:
    """The schema version of a journal opened read-only, or a clear refusal.

    A file without sagaguard's tables is somebody else's database; an older schema cannot be
    read without the migration a reader must not run.
    """
    tables = _tables(conn)
    if "schema_version" not in tables or "runs" not in tables:
        what = f"its tables are {', '.join(sorted(tables))}" if tables else "it is empty"
        raise StoreError(f"{path} is not a sagaguard journal ({what})")
    found, latest = current_version(conn), latest_version()
    if found > latest:
        raise SchemaVersionError(
            f"journal {path} has schema version {found}, newer than {latest} that this "
            "sagaguard understands: upgrade sagaguard to open it"
        )
    if found < latest:
        raise StoreError(
            f"journal {path} has schema version {found}, older than {latest}: a read-only "
            "command cannot upgrade it (run a writing command such as `sagaguard worker` once)"
        )
    return found
