"""The PostgreSQL journal's schema: versioned migrations, safe when many workers start at once.

Every migration runs in one transaction under an advisory lock keyed to the schema, so the
first of several workers starting together applies it and the others find it done. The
``pg_migrations`` folder beside this module holds one ``NNNN_name.sql`` script per version,
written with ``{schema}`` where the (quoted) schema name goes. A schema holding tables but
no sagaguard version table is another application's and is refused.

Also the start-up check that the connection keeps session state between transactions: a
transaction-mode pooler (PgBouncer ``pool_mode=transaction``) hands each transaction to any
server connection, which silently breaks LISTEN and every ``SET``.
"""

from __future__ import annotations

import re
import uuid
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from sagaguard.exceptions import SchemaVersionError, StoreError
from sagaguard.storage.migrations import Migration

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "check_session_state",
    "current_version",
    "latest_version",
    "migrate",
    "migrations",
    "quoted_schema",
]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def quoted_schema(name: str) -> str:
    """The schema name as a quoted SQL identifier (``StoreError`` for a name we refuse)."""
    if not _SCHEMA_NAME.match(name):
        raise StoreError(
            f"schema {name[:60]!r} is not a schema name sagaguard uses: lower-case letters, "
            "digits and _, starting with a letter or _, at most 48 characters"
        )
    return f'"{name}"'


@cache
def migrations() -> tuple[Migration, ...]:
    """Every PostgreSQL migration shipped with this sagaguard, in version order."""
    found = []
    for entry in resources.files("sagaguard.storage.pg_migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            script = entry.read_text(encoding="utf-8")
            found.append(Migration(int(number), rest.removesuffix(".sql"), (script,)))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError(
            f"PostgreSQL migrations are not numbered 1..n: {[m.version for m in found]}"
        )
    return tuple(found)


def latest_version() -> int:
    """The schema version this sagaguard writes on PostgreSQL."""
    return migrations()[-1].version


def current_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int | None:
    """The version recorded in ``schema``; ``None`` when it holds no sagaguard journal yet.

    ``StoreError`` when the schema holds other tables: it belongs to someone else.
    """
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
    }
    if "schema_version" not in tables:
        if tables:
            listed = ", ".join(sorted(str(t) for t in tables)[:5])
            raise StoreError(
                f"schema {schema!r} is not a sagaguard journal (its tables are {listed}): "
                "choose another with ?schema=NAME"
            )
        return None
    row = conn.execute(f"SELECT max(version) FROM {quoted_schema(schema)}.schema_version")
    found = row.fetchone()
    return int(str(found[0])) if found and found[0] is not None else 0


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """Bring ``schema`` up to :func:`latest_version` in one locked transaction; the version."""
    quoted, latest = quoted_schema(schema), latest_version()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sagaguard:{schema}",))
        found = current_version(conn, schema)
        if found is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            conn.execute(
                f"CREATE TABLE {quoted}.schema_version (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            found = 0
        _check_not_newer(found, latest, schema)
        for migration in migrations():
            if migration.version > found:
                conn.execute(migration.statements[0].replace("{schema}", quoted).encode())
                conn.execute(
                    f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)",
                    (migration.version,),
                )
    return latest


def check_readable(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The version of a journal opened read-only, which must exist and be current."""
    found = current_version(conn, schema)
    latest = latest_version()
    if found is None:
        raise StoreError(f"no sagaguard journal in schema {schema!r}")
    _check_not_newer(found, latest, schema)
    if found < latest:
        raise StoreError(
            f"journal schema {schema!r} has version {found}, older than {latest}: a read-only "
            "command cannot upgrade it (run a writing command such as `sagaguard worker` once)"
        )
    return found


def _check_not_newer(found: int, latest: int, schema: str) -> None:
    if found > latest:
        raise SchemaVersionError(
            f"journal schema {schema!r} has version {found}, newer than {latest} that this "
            "sagaguard understands: upgrade sagaguard to use it"
        )


def check_session_state(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """``StoreError`` unless a setting made in one transaction is still there in the next ones.

    Behind a transaction-mode pooler consecutive transactions may run on different server
    connections: LISTEN would stop hearing, and nothing the store relies on per session holds.
    """
    probe = uuid.uuid4().hex
    conn.execute("SELECT set_config('sagaguard.session_probe', %s, false)", (probe,))
    conn.commit()
    for _ in range(3):
        row = conn.execute("SELECT current_setting('sagaguard.session_probe', true)").fetchone()
        conn.commit()
        if row is None or row[0] != probe:
            raise StoreError(
                "the PostgreSQL connection loses its session between transactions, as a "
                "transaction-mode pooler (PgBouncer pool_mode=transaction) does: LISTEN and "
                "session settings would silently stop working. Connect sagaguard to "
                "PostgreSQL directly or through a session-mode pool"
            )
