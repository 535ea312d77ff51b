"""The SQLite journal's schema, as ordered migrations applied atomically when a file is opened.

Each ``NNNN_name.sql`` file beside this module is one migration; its number is the schema
version it produces. ``schema_version`` records every version applied. Opening a file that a
newer sagaguard wrote raises :class:`~sagaguard.exceptions.SchemaVersionError` rather than
guessing at tables it does not know.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sagaguard.exceptions import SchemaVersionError, StoreError

__all__ = ["Migration", "current_version", "latest_version", "migrate", "migrations"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the version it produces and its SQL statements, in order."""

    version: int
    name: str
    statements: tuple[str, ...]


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this sagaguard, in version order (numbered 1, 2, ...)."""
    found: list[Migration] = []
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(
            Migration(
                version=int(number),
                name=rest.removesuffix(".sql"),
                statements=split_statements(entry.read_text(encoding="utf-8")),
            )
        )
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError(f"journal migrations are not numbered 1..n: {[m.version for m in found]}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this sagaguard writes."""
    return migrations()[-1].version


def split_statements(script: str) -> tuple[str, ...]:
    """Split a SQL script into complete statements (trigger bodies and literals stay whole)."""
    statements: list[str] = []
    *terminated, tail = script.split(";")
    pending = ""
    for piece in terminated:
        pending += piece + ";"
        # sqlite3 knows where a statement ends: not inside a string, comment or trigger body.
        if sqlite3.complete_statement(pending):
            if not _blank(pending.removesuffix(";")):
                statements.append(_strip_leading_comments(pending))
            pending = ""
    pending += tail
    if not _blank(pending):
        raise StoreError(f"incomplete SQL statement in a journal migration: {pending.strip()!r}")
    return tuple(statements)


def _strip_leading_comments(text: str) -> str:
    lines = text.strip().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def _blank(text: str) -> bool:
    return not _strip_leading_comments(text)


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a file sagaguard never wrote)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, *, path: str) -> int:
    """Bring the file up to :func:`latest_version` in one transaction; returns that version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). A file already current is
    only read. Raises ``SchemaVersionError`` when the file is newer than this sagaguard.
    """
    latest = latest_version()
    found = current_version(conn)
    _check_not_newer(found, latest, path)
    if found == latest:
        return found
    # The write lock makes concurrent openers apply each migration exactly once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        found = current_version(conn)
        _check_not_newer(found, latest, path)
        for migration in migrations():
            if migration.version <= found:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return latest


def _check_not_newer(found: int, latest: int, path: str) -> None:
    if found > latest:
        raise SchemaVersionError(
            f"journal {path} has schema version {found}, newer than {latest} that this "
            "sagaguard understands: upgrade sagaguard to open it"
        )
