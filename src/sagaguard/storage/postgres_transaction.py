"""One PostgreSQL journal transaction, sent in as few round trips as it allows.

A journal write is a read (lock the run's row, see its state), a decision in Python, then
writes whose answers nothing needs. Sent one statement at a time, with psycopg's own
``BEGIN`` and ``COMMIT``, a ``record()`` took seven round trips; on a machine whose cores
sleep between messages each costs far more than the server's work. :class:`Transaction`
sends ``BEGIN`` with the first read, holds back the writes, and sends them with the
``COMMIT`` as one message: two round trips for a record, one for a snapshot read, and one
for a record whose check goes first in the commit's message (``commit_reading``).

It binds parameters on the client, because only the simple query protocol takes several
statements in one message. Each value is written as psycopg writes a literal (the
adaptation behind ``sql.Literal`` and ``ClientCursor``, with libpq's own quoting), straight
into the statement's text: a ``mogrify`` call parses the query and builds its state again
at every call, which cost more than the values. The plain values that make up nearly all
of a run's path (short text, integers, finite floats) are written without the adaptation's
per-value dispatch, to the same bytes (a property test holds them to psycopg's). The
statements of a run's path are prepared once per session and run by ``EXECUTE``, so the
server does not plan them again at every message. That
protocol also keeps a frozen client safe: the server reads each message whole before it
runs any of it, and between messages it waits as "idle in transaction", where
``idle_in_transaction_session_timeout`` ends the session and frees its row locks. (In
pipeline mode the server runs statements that arrive without a sync and then waits as
"active", which no timeout ends.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from math import isfinite
from typing import Any, overload

import psycopg
from psycopg.adapt import Transformer

__all__ = ["Connection", "ServerTime", "Transaction"]

Connection = psycopg.Connection[tuple[Any, ...]]

_BEGIN = ("BEGIN",)
_SNAPSHOT = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",)
_FLUSHED_LATER = ("BEGIN", "SET LOCAL synchronous_commit = off")


_NULL = "NULL"


class ServerTime(float):
    """A time the server writes in: its receipt of the message, plus this many seconds.

    Bound as an SQL expression, not a value, so a write sent without first reading the
    server's clock still carries the server's time; every statement of one message sees the
    same ``statement_timestamp()``. Only addition is meaningful (a lease is ``now +
    lease_s``): its float value is the offset, so ordering it against a time raises rather
    than answer wrongly.
    """

    __slots__ = ()

    def __add__(self, other: float) -> ServerTime:
        return ServerTime(float(self) + other)

    __radd__ = __add__

    def _unordered(self, other: object) -> bool:
        raise TypeError("a ServerTime is known only to the server: it cannot be ordered")

    __lt__ = __le__ = __gt__ = __ge__ = _unordered

    def at(self, received: float) -> float:
        """The time this is, once the message's receipt time is known."""
        return received + float(self)

    def literal(self) -> str:
        """The SQL expression the server computes it by."""
        return _server_time(float(self))


@lru_cache(maxsize=64)
def _server_time(offset: float) -> str:
    # A run's path uses few offsets (0 and its leases), each in many statements.
    return f"(extract(epoch FROM statement_timestamp())::float8 + {offset!r})"


@overload
def resolved(value: float, received: float) -> float: ...
@overload
def resolved(value: float | None, received: float) -> float | None: ...
def resolved(value: float | None, received: float) -> float | None:
    """``value`` as a plain time: a :class:`ServerTime` once the receipt time is known."""
    return value.at(received) if isinstance(value, ServerTime) else value


@lru_cache(maxsize=256)
def _placeholders(statement: str) -> int:
    """How many ``%s`` placeholders ``statement`` holds (it may hold no other ``%``)."""
    if "%" in statement.replace("%s", ""):
        raise ValueError(f"only %s placeholders are bound here: {statement!r}")
    return statement.count("%s")


def _plain_literal(value: object) -> str | None:
    """The literal psycopg writes for ``value``, for the journal's common plain values; ``None``
    for anything else (psycopg's adaptation then writes it).

    A run's path binds hundreds of values, nearly all short text, integers and finite floats,
    whose literals are fixed: text quoted with its quotes doubled (with a backslash or a NUL
    it is left to psycopg, which writes an ``E''`` string or refuses), and a negative number
    after a space, so that no ``-`` before it makes a comment.
    """
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        if "\\" in text or "\x00" in text:
            return None
        return "'" + text.replace("'", "''") + "'"
    if kind is int:
        number = repr(value)
        return number if number[0] != "-" else " " + number
    if kind is float and isfinite(value):  # type: ignore[arg-type]
        number = repr(value)
        return number if number[0] != "-" else " " + number
    if kind is bool:
        return "true" if value else "false"
    return None


class Transaction:
    """A transaction on an autocommit connection: reads go at once, writes with the commit.

    ``execute`` sends a statement whose answer the caller needs (with ``BEGIN`` first, and
    any held writes before it, so a read sees them). ``defer`` holds a write back.
    ``commit`` sends the held writes and ``COMMIT`` in one message: once it is called, the
    commit may have landed whatever then goes wrong (see ``sent``).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        snapshot: bool = False,
        flushed_later: bool = False,
        prepared: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """``flushed_later``: the commit does not wait for its WAL to reach the disk (for a
        write whose loss in a server crash costs nothing: ``_CLAIMS_FLUSHED_LATER`` in
        :mod:`sagaguard.storage.postgres` says when). ``prepared``: statements prepared in
        the session, by text: their name and the EXECUTE that runs them."""
        self.connection = connection
        self._prepared = prepared or {}
        self._cursor = psycopg.ClientCursor(connection)
        self._literal: Callable[[Any], bytes] = Transformer.from_context(connection).as_literal
        # Literals are text in the statement's text, which psycopg encodes for the connection.
        self._encoding = connection.info.encoding
        self._begin: tuple[str, ...] | None = (
            _SNAPSHOT if snapshot else _FLUSHED_LATER if flushed_later else _BEGIN
        )
        self._held: list[str] = []
        self.sent = False
        """True once a message holding the ``COMMIT`` has been handed to the driver."""
        self.ended = False

    def execute(
        self, statement: str, params: Sequence[Any] | None = None
    ) -> psycopg.ClientCursor[tuple[Any, ...]]:
        """Run ``statement`` now; the cursor holds its rows."""
        self._send([self.bind(statement, params)])
        while self._cursor.nextset():
            pass  # the cursor shows the message's first result: move to the last one's
        return self._cursor

    def fetch_sets(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        """Run reads in one message (with the ``COMMIT`` too, if ``commit``): each one's rows."""
        skip = self._send([self.bind(s, p) for s, p in statements], commit=commit)
        for _ in range(skip):
            self._cursor.nextset()
        sets: list[list[tuple[Any, ...]]] = []
        for index in range(len(statements)):
            if index:
                self._cursor.nextset()
            sets.append(self._cursor.fetchall())
        return sets

    def defer(self, statement: str, params: Sequence[Any] | None = None) -> None:
        """Hold a write whose answer nobody needs until the next read or the commit."""
        self._held.append(self.bind(statement, params))

    def commit_reading(
        self, statement: str, params: Sequence[Any] | None = None, *, after: int = 0
    ) -> list[tuple[Any, ...]]:
        """Send the held writes with ``statement`` after the first ``after`` of them, then
        ``COMMIT``, as one message; its rows. The statement can refuse the transaction (an
        error) before the writes behind it run."""
        head = [] if self._begin is None else list(self._begin)
        self._begin = None
        held, self._held = self._held, []
        message = [*head, *held[:after], self.bind(statement, params), *held[after:], "COMMIT"]
        self.sent = True
        self.ended = True
        self._cursor.execute("; ".join(message))
        for _ in range(len(head) + after):
            self._cursor.nextset()
        return self._cursor.fetchall()

    def commit_checked(
        self, check: str, params: Sequence[Any], *, refusal: str, after: int = 0
    ) -> list[tuple[Any, ...]] | None:
        """:meth:`commit_reading` behind ``check``; ``None`` when the check refused (raised
        SQLSTATE ``refusal``): the transaction is then rolled back, nothing of it written."""
        try:
            return self.commit_reading(check, params, after=after)
        except psycopg.Error as exc:
            if exc.sqlstate != refusal:
                raise
            self.rollback()
            return None

    def commit(self) -> None:
        """Send the held writes and ``COMMIT`` as one message (nothing if nothing began)."""
        if self.ended:
            return
        if self._begin is not None and not self._held:
            self.ended = True
            return  # nothing was sent: there is no transaction to end
        self._send([], commit=True)

    def rollback(self) -> None:
        """End a failed transaction, unless the connection is gone (the pool drops it then)."""
        self._held.clear()
        conn = self.connection
        idle = psycopg.pq.TransactionStatus.IDLE
        if not conn.closed and not conn.broken and conn.pgconn.transaction_status != idle:
            self._cursor.execute("ROLLBACK")
        self.ended = True

    def bind(self, statement: str, params: Sequence[Any] | None = None) -> str:
        """``statement`` with ``params`` written in (an EXECUTE, if it is prepared)."""
        prepared = self._prepared.get(statement)
        if prepared is not None:
            statement = prepared[1]
        if not params:
            return statement
        count = _placeholders(statement)
        if count != len(params):
            raise TypeError(f"{count} placeholders, {len(params)} parameters given")
        literal, plain, encoding = self._literal, _plain_literal, self._encoding
        # Only %s placeholders are in the text, so %-formatting writes each literal in place.
        return statement % tuple(
            [
                _NULL
                if value is None
                else value.literal()
                if type(value) is ServerTime
                else plain(value) or literal(value).decode(encoding)
                for value in params
            ]
        )

    def _send(self, parts: list[str], *, commit: bool = False) -> int:
        """Send ``BEGIN`` (once), the held writes, ``parts`` and maybe ``COMMIT`` as one
        message; how many results come before those of ``parts``."""
        head = [] if self._begin is None else list(self._begin)
        self._begin = None
        head.extend(self._held)
        self._held.clear()
        message = [*head, *parts, *(["COMMIT"] if commit else [])]
        if commit:
            self.sent = True
            self.ended = True
        self._cursor.execute("; ".join(message))
        return len(head)
