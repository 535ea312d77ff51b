"""A fresh journal store for every scenario: in memory, a SQLite file, or a PostgreSQL schema.

``memory://`` (the default) costs nothing. ``sqlite`` or ``sqlite:///DIR`` gives each
scenario a journal file of its own in DIR (a temporary folder when none is named); a
failing scenario's file is kept, so ``sagaguard runs show --db FILE`` can show what
happened. ``postgresql://...`` gives each scenario a schema of its own on that server
(``sg_verify_<random>``, on the harness's fake clock), dropped once the scenario ends.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sagaguard.exceptions import SagaGuardError, UnsupportedStoreError
from sagaguard.storage import JournalStore, open_store

__all__ = ["ScenarioStores"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ScenarioStores:
    """Opens a fresh store per scenario on the backend ``url`` names, and cleans up after."""

    def __init__(self, url: str = "memory://") -> None:
        scheme = url.split(":", 1)[0].lower() if ":" in url else url.lower()
        self.url = url
        self.backend = {"postgres": "postgresql"}.get(scheme, scheme)
        self._folder: Path | None = None
        self._own_folder = False
        self._paths: dict[int, Path] = {}
        self.kept: list[str] = []
        """Journal files of failing scenarios, kept for a person to look at (SQLite)."""
        if self.backend == "sqlite":
            path = urlsplit(url).path if "://" in url else ""
            if path.startswith("/"):
                path = path[1:]
            if path:
                self._folder = Path(path)
                if self._folder.exists() and not self._folder.is_dir():
                    raise SagaGuardError(
                        f"--db {url}: verify writes one journal per scenario, so it needs a "
                        "folder, not a file"
                    )
            else:
                self._folder = Path(tempfile.mkdtemp(prefix="sagaguard-verify-"))
                self._own_folder = True
        elif self.backend == "postgresql":
            self._server, self._options = _split_postgres(url)
        elif self.backend != "memory":
            raise UnsupportedStoreError(
                f"unsupported journal URL {url!r}: use memory://, sqlite:///FOLDER or "
                "postgresql://user@host/dbname"
            )

    def open(self, name: str) -> JournalStore:
        """A fresh, empty journal for the scenario ``name``."""
        if self.backend == "memory":
            return open_store("memory://")
        if self.backend == "sqlite":
            assert self._folder is not None
            self._folder.mkdir(parents=True, exist_ok=True)
            path = self._folder / f"{_SAFE.sub('_', name)}-{uuid.uuid4().hex[:6]}.sqlite3"
            store = open_store(f"sqlite:///{path.resolve()}")
            self._paths[id(store)] = path.resolve()
            return store
        schema = f"sg_verify_{uuid.uuid4().hex[:16]}"
        query = urlencode({**self._options, "schema": schema, "clock": "caller"})
        return open_store(f"{self._server}{'&' if '?' in self._server else '?'}{query}")

    def done(self, store: JournalStore, *, keep: bool) -> None:
        """Close the scenario's store; keep (SQLite) a failing one's journal, else remove it."""
        store.close()
        path = self._paths.pop(id(store), None)
        if path is not None:
            if keep:
                self.kept.append(str(path))
            else:
                for leftover in path.parent.glob(f"{path.name}*"):
                    leftover.unlink(missing_ok=True)
        elif self.backend == "postgresql":
            schema = getattr(store, "schema", None)
            if isinstance(schema, str):
                _drop_schema(self._server, schema)

    def close(self) -> None:
        """Remove the temporary folder, unless it holds a failing scenario's journal."""
        if self._own_folder and self._folder is not None and not self.kept:
            shutil.rmtree(self._folder, ignore_errors=True)


def _split_postgres(url: str) -> tuple[str, dict[str, str]]:
    """The server part of ``url`` (libpq's options kept) and sagaguard's own options."""
    parts = urlsplit(url)
    ours = ("schema", "clock")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ours]
    libpq = [(k, v) for k, v in query if k not in ("pool_size", "reconnect_s")]
    options = {k: v for k, v in query if k in ("pool_size", "reconnect_s")}
    options.setdefault("pool_size", "2")
    server = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(libpq), ""))
    return server, options


def _drop_schema(server: str, schema: str) -> None:
    import psycopg

    from sagaguard.storage.postgres_schema import quoted_schema

    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {quoted_schema(schema)} CASCADE")
