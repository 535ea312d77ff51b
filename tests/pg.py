"""The PostgreSQL server the tests use, and a fresh schema per store so that tests never meet.

``SAGAGUARD_TEST_PG_URL`` names the server (default: the local one at 127.0.0.1:5432, user
``postgres``, database ``test``). Without a server the PostgreSQL tests skip, saying why;
with ``SAGAGUARD_REQUIRE_PG=1`` (as ``.ci/run`` sets) they fail instead, so CI cannot pass
by skipping them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The server under test (no sagaguard options)."""
    return os.environ.get("SAGAGUARD_TEST_PG_URL", DEFAULT_URL)


@functools.cache
def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or ``None`` when they can."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - the store needs it too
    except ImportError as exc:
        return f"psycopg 3 / psycopg_pool not installed ({exc.name}): pip install -e '.[postgres]'"
    try:
        with psycopg.connect(server_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server at {server_url()} ({first}); set SAGAGUARD_TEST_PG_URL"
    return None


def require() -> None:
    """Skip the calling test when there is no server; fail it when one is required."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("SAGAGUARD_REQUIRE_PG") == "1":
        pytest.fail(f"SAGAGUARD_REQUIRE_PG=1 but {reason}")
    pytest.skip(reason)


def fresh_schema() -> str:
    """A schema name no other test (or engineer) uses."""
    return f"sg_test_{uuid.uuid4().hex[:16]}"


def store_url(schema: str, **options: str) -> str:
    """The URL of a store in ``schema`` of the server under test."""
    separator = "&" if "?" in server_url() else "?"
    return f"{server_url()}{separator}{urlencode({'schema': schema, **options})}"


def drop_schema(schema: str) -> None:
    """Remove a test's schema and everything in it."""
    import psycopg

    with psycopg.connect(server_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema name on the server under test, dropped after the test."""
    require()
    name = fresh_schema()
    try:
        yield name
    finally:
        drop_schema(name)


def terminate(application_prefix: str) -> int:
    """Kill every backend whose application name starts with the prefix; how many."""
    import psycopg

    with psycopg.connect(server_url(), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE starts_with(application_name, %s) AND pid <> pg_backend_pid()",
            (application_prefix,),
        ).fetchall()
    return len(rows)


def cluster_command(action: str, *, mode: str = "fast") -> list[str]:
    """``pg_ctlcluster`` doing ``action`` on the local cluster that serves the URL's port.

    ``mode`` is the shutdown's: ``immediate`` is a crash (no checkpoint, and commits that
    did not wait for the disk may be lost), ``fast`` a clean stop.

    Following the port lets a test that restarts the server run against a private cluster
    (another port) without disturbing the main one; skips where that is impossible.
    """
    import shutil
    import subprocess
    from urllib.parse import urlsplit

    tool, listing = shutil.which("pg_ctlcluster"), shutil.which("pg_lsclusters")
    if os.geteuid() != 0 or tool is None or listing is None:
        pytest.skip("restarting the server needs root and pg_ctlcluster (a Debian cluster)")
    where = urlsplit(server_url())
    if where.hostname not in (None, "", "127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the server under test is not local ({where.hostname})")
    port = str(where.port or 5432)
    clusters = subprocess.run(
        [listing, "--no-header"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.splitlines()
    for version, name, cluster_port, *_ in (line.split() for line in clusters if line.strip()):
        if cluster_port == port:
            return [tool, "--skip-systemctl-redirect", version, name, action, "-m", mode]
    pytest.skip(f"no local cluster listens on port {port} (pg_lsclusters)")


@contextlib.contextmanager
def server_comes_back() -> Iterator[None]:
    """Whatever happens inside (a restart that failed halfway), the server is up afterwards."""
    import subprocess

    try:
        yield
    finally:
        if unavailable.__wrapped__() is not None:
            command = [part for part in cluster_command("start") if part not in ("-m", "fast")]
            subprocess.run(command, capture_output=True, timeout=120, check=False)
