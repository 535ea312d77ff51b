"""A PostgreSQL run's creation in one message, when the operation id is new.

Made the long way, a create reads whether the run exists (and the server's clock), inserts
it, then sends its steps and first event with the commit: three round trips for every
``submit``. Most operation ids are new, so the store first sends it all at once: the run's
``INSERT ... ON CONFLICT DO NOTHING``, then ``created_here`` (which refuses the rest unless
the run now holds this creator's token, i.e. the insert did insert), the steps, the
``run_created`` event and ``COMMIT``. A refused create wrote nothing: the operation id is
taken, and the long way reads the run there and judges it (a duplicate, a conflict, the
creator's own earlier commit). The rows are those of :func:`journal.first_rows` either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sagaguard.storage import journal
from sagaguard.storage import postgres_statements as sql
from sagaguard.storage.base import Claim, CreateResult, NewRun
from sagaguard.storage.postgres_transaction import ServerTime
from sagaguard.storage.rows import run_row

__all__ = ["TAKEN", "create_at_once"]

TAKEN = "SGK02"
"""The SQLSTATE ``created_here`` raises when the run existed before this create."""


def create_at_once(
    conn: sql.Conn,
    statements: sql.Statements,
    new: NewRun,
    *,
    owner: str | None,
    actor: str,
    now: float | None,
    lease_s: float,
    input_text: str,
    token: str,
    notify: Callable[[sql.Conn], None] | None,
) -> CreateResult | None:
    """Create the run of ``new`` (no transitions) in one message; ``None`` if its
    operation id is taken (then nothing was written). ``now``: the caller's time, or
    ``None`` for the server's. ``notify`` adds the statement that wakes idle workers."""
    at: float = ServerTime(0.0) if now is None else now
    first = journal.first_rows(new, owner=owner, now=at, lease_s=lease_s, input_hash=new.input_hash)
    op = new.operation_id
    conn.defer(statements.create_run, (*run_row(first.run, input_text), token))
    sql.insert_steps(conn, statements, first)
    sql.append(conn, statements, [journal.created_event(new, actor=actor, now=at)])
    if notify is not None:
        notify(conn)
    check = (op, token, now)
    rows = conn.commit_checked(statements.created_here, check, refusal=TAKEN, after=1)
    if rows is None:
        return None
    received = float(rows[0][0])
    lease = None if owner is None else received + lease_s
    run = dataclasses.replace(
        first.run, created_at=received, updated_at=received, lease_expires_at=lease
    )
    claim = None if owner is None else Claim(op, owner, 1, received + lease_s)
    return CreateResult(snapshot=dataclasses.replace(first, run=run), created=True, claim=claim)
