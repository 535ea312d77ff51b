"""A PostgreSQL journal URL: libpq's connection string, with sagaguard's own options taken out.

``postgresql://user@host/db?schema=sagaguard&clock=server&pool_size=8&reconnect_s=30``:
sagaguard's options are removed before the URL reaches libpq, and every other option
(``sslmode``, ``connect_timeout``, ...) is libpq's. A number outside its bound is refused by
name (:mod:`sagaguard.storage.options`) before anything is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sagaguard.exceptions import StoreError
from sagaguard.storage.options import POOL_SIZE, RECONNECT_S

__all__ = ["PostgresURL", "parse_url"]

_OPTIONS = ("schema", "clock", "pool_size", "reconnect_s")
_URL_HELP = "use postgresql://user@host:5432/dbname[?schema=sagaguard&clock=server|caller]"


@dataclass(frozen=True, slots=True)
class PostgresURL:
    """What a journal URL says: where to connect, and how the store behaves there (its
    fields are the store's own keyword arguments)."""

    conninfo: str
    schema_name: str
    clock: str
    pool_size: int
    reconnect_s: float


def parse_url(url: str) -> PostgresURL:
    """Split ``postgresql://...`` (also ``postgres://``) into libpq's part and sagaguard's.

    ``schema`` defaults to ``sagaguard``, ``clock`` to ``server``, ``pool_size`` to 8
    connections (1 to 1000) and ``reconnect_s`` to 30 seconds (0.1 to 86400).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise StoreError(f"bad PostgreSQL journal URL {url!r}: {_URL_HELP}")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            ours[key] = value
        else:
            theirs.append((key, value))
    return PostgresURL(
        conninfo=urlunsplit(parts._replace(query=urlencode(theirs))),
        schema_name=ours.get("schema", "sagaguard"),
        clock=ours.get("clock", "server"),
        pool_size=int(POOL_SIZE.parse(ours.get("pool_size", "8"))),
        reconnect_s=RECONNECT_S.parse(ours.get("reconnect_s", "30")),
    )
