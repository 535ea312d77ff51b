"""The PostgreSQL store beyond the contract: its schema, its clock, SKIP LOCKED, refusals.

Each test works in a schema of its own on the shared server and drops it afterwards.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagaguard.exceptions import RunBusyError, StoreError
from sagaguard.storage import NewRun, RunStatus, StepChange, StepStatus, Transition, open_store
from sagaguard.storage.base import NewAlert
from sagaguard.storage.postgres_schema import latest_version
from tests import pg
from tests.pg import schema
from tests.waking import SaysWhenIdle, submit_until

pytestmark = pytest.mark.postgres
__all__ = ["schema"]  # the fixture, used by name

T0 = 1_700_000_000.0


def _new(operation_id: str = "op-1") -> NewRun:
    return NewRun(operation_id, "checkout", "1", {"amount": 42}, ("reserve", "charge"))


def _admin() -> Any:
    import psycopg

    return psycopg.connect(pg.server_url(), autocommit=True, connect_timeout=10)


def test_the_journal_lives_in_its_own_schema_beside_the_applications_tables(schema: str) -> None:
    with _admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}_app"')
        conn.execute(f'CREATE TABLE "{schema}_app".orders (id int)')
    try:
        store = open_store(pg.store_url(schema))
        store.close()
        with _admin() as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            }
            untouched = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                (f"{schema}_app",),
            ).fetchone()
        assert tables == {"runs", "steps", "events", "alerts", "schema_version"}
        assert untouched == (1,)
    finally:
        pg.drop_schema(f"{schema}_app")


def test_workers_starting_together_apply_each_migration_once(schema: str) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            open_store(pg.store_url(schema)).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with _admin() as conn:
        versions = conn.execute(f'SELECT version FROM "{schema}".schema_version').fetchall()
    assert versions == [(version,) for version in range(1, latest_version() + 1)]


def test_a_schema_holding_another_applications_tables_is_refused(schema: str) -> None:
    with _admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".invoices (id int)')

    with pytest.raises(StoreError, match=r"is not a sagaguard journal \(its tables are invoices\)"):
        open_store(pg.store_url(schema))


def test_a_reader_neither_creates_a_schema_nor_writes(schema: str) -> None:
    with pytest.raises(StoreError, match="no sagaguard journal in schema"):
        open_store(pg.store_url(schema), read_only=True)
    with _admin() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone() == (0,)

    writer = open_store(pg.store_url(schema))
    writer.create_run(_new(), owner="w", now=T0, lease_s=30.0)
    writer.close()
    reader = open_store(pg.store_url(schema), read_only=True)
    try:
        assert [run.operation_id for run in reader.list_runs()] == ["op-1"]
        with pytest.raises(StoreError, match="open read-only"):
            reader.claim("op-1", owner="r", now=T0, lease_s=30.0)
    finally:
        reader.close()


def test_the_event_log_is_append_only_even_from_raw_sql(schema: str) -> None:
    import psycopg

    store = open_store(pg.store_url(schema))
    store.create_run(_new(), owner="w", now=T0, lease_s=30.0)
    store.close()
    with _admin() as conn:
        for statement in (
            f'UPDATE "{schema}".events SET actor = %s',
            f'DELETE FROM "{schema}".events WHERE actor = %s',
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement, ("w",))


def test_a_claim_skips_runs_another_worker_is_claiming_instead_of_waiting(schema: str) -> None:
    """SKIP LOCKED: a row locked by another transaction is passed over, not queued on."""
    store = open_store(pg.store_url(schema, clock="caller"))
    try:
        for number in range(3):
            store.create_run(_new(f"op-{number}"), owner=None, now=T0 + number, lease_s=30.0)
        with _admin() as conn, conn.transaction():
            conn.execute(f"SELECT 1 FROM \"{schema}\".runs WHERE operation_id = 'op-0' FOR UPDATE")
            taken = store.claim_expired(owner="w", now=T0 + 10, lease_s=30.0, limit=10)
        assert [claim.operation_id for claim in taken] == ["op-1", "op-2"]
        [late] = store.claim_expired(owner="w", now=T0 + 10, lease_s=30.0)
        assert late.operation_id == "op-0"
    finally:
        store.close()


@pytest.mark.parametrize("skew_s", [-30.0, 30.0])
def test_owners_whose_clocks_disagree_never_take_over_a_live_lease(
    schema: str, skew_s: float
) -> None:
    """Leases are judged by the server's clock: a caller's ``now`` cannot expire one early."""
    import time

    store = open_store(pg.store_url(schema))  # clock=server, the default
    try:
        created = store.create_run(_new(), owner="a", now=time.time(), lease_s=120.0)
        assert created.claim is not None
        behind_or_ahead = time.time() + skew_s + 120.0  # past the lease, by b's own clock

        with pytest.raises(RunBusyError):
            store.claim("op-1", owner="b", now=behind_or_ahead, lease_s=120.0)
        assert store.claim_expired(owner="b", now=behind_or_ahead, lease_s=120.0) == []
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED))
        renewed = store.record(created.claim, [started], now=0.0, lease_s=120.0)
        assert renewed.lease_expires_at > time.time() + 100, "the server's time, not now=0"
        run = store.load("op-1").run
        assert (run.owner, run.fencing_token, run.status) == ("a", 1, RunStatus.RUNNING)
    finally:
        store.close()


def test_a_heartbeat_on_the_servers_clock_renews_by_it_and_never_shortens(schema: str) -> None:
    import time

    store = open_store(pg.store_url(schema))  # clock=server, the default
    try:
        created = store.create_run(_new(), owner="a", now=time.time(), lease_s=5.0)
        assert created.claim is not None

        beat = store.heartbeat(created.claim, now=0.0, lease_s=300.0)
        assert beat.lease_expires_at > time.time() + 250, "the server's time, not now=0"
        kept = store.heartbeat(beat, now=time.time() + 1000, lease_s=5.0)

        assert kept.lease_expires_at == beat.lease_expires_at
        assert store.load("op-1").run.lease_expires_at == beat.lease_expires_at
    finally:
        store.close()


class _LosingPooler:
    """A connection behind a transaction-mode pooler: session settings vanish at commit."""

    def __init__(self) -> None:
        self.value = ""

    def execute(self, query: str, params: tuple[str, ...] = ()) -> _LosingPooler:
        self.value = params[0] if params else ""
        return self

    def fetchone(self) -> tuple[str]:
        return (self.value,)

    def commit(self) -> None:
        self.value = ""


def test_a_transaction_mode_pooler_is_refused_with_a_clear_message() -> None:
    from sagaguard.storage.postgres_schema import check_session_state

    with pytest.raises(StoreError, match="transaction-mode pooler"):
        check_session_state(_LosingPooler())  # type: ignore[arg-type]


def test_a_bad_schema_name_or_clock_is_refused_by_name() -> None:
    pg.require()
    with pytest.raises(StoreError, match="is not a schema name"):
        open_store(pg.store_url("Robert'); DROP TABLE runs;--"))
    with pytest.raises(StoreError, match="clock must be server or caller"):
        open_store(pg.store_url("sg_unused", clock="sundial"))


def test_a_create_whose_commit_ack_was_lost_knows_the_run_as_its_own(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit lands but its acknowledgement is lost: the rerun finds the run by its create
    token and reports created=True with the creator's claim, not created=False."""
    import psycopg

    from sagaguard.storage.postgres_transaction import Transaction

    store = open_store(pg.store_url(schema, clock="caller"))
    real_commit = Transaction.commit
    lost: list[bool] = []

    def commit_then_lose_the_ack(conn: Any) -> None:
        real_commit(conn)
        # Only the test's thread: the pool sets up new connections, with a commit, on its own.
        if not lost and threading.current_thread() is threading.main_thread():
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    try:
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))
        monkeypatch.setattr(Transaction, "commit", commit_then_lose_the_ack)
        created = store.create_run(_new(), owner="w", now=T0, lease_s=30.0, transitions=[started])
        monkeypatch.undo()
        assert lost == [True]
        assert created.created
        assert created.claim is not None
        assert created.claim.fencing_token == 1
        assert [step.status for step in created.snapshot.steps] == [
            StepStatus.STARTED,
            StepStatus.PENDING,
        ]
        kinds = [event.kind for event in store.events("op-1")]
        assert kinds == ["run_created", "step_started"]
        done = Transition("step_completed", StepChange("reserve", StepStatus.COMPLETED))
        store.record(created.claim, [done], now=T0 + 1, lease_s=30.0)
        assert store.load("op-1").steps[0].status is StepStatus.COMPLETED
        again = store.create_run(_new(), owner="w2", now=T0 + 2, lease_s=30.0)
        assert not again.created
        assert again.claim is None
    finally:
        store.close()


def test_a_submit_through_another_store_wakes_an_idle_worker_by_notify(schema: str) -> None:
    """Two stores (two processes' pools): the idle worker's only wake-up is the other's NOTIFY.

    Its interval is 600 s; lined up as :mod:`tests.waking` says.
    """
    from sagaguard import Worker
    from sagaguard.engine import Engine, Saga

    done = threading.Event()
    saga = Saga("woken", defaults={"timeout": "30s"})
    saga.step(id="only", changes=["database"], idempotent="yes")(lambda ctx: done.set())
    idle = SaysWhenIdle(open_store(pg.store_url(schema)))
    with (
        Engine(store=idle, sagas=[saga]) as engine,
        Engine(store=pg.store_url(schema)) as submitter,
    ):
        worker = Worker(engine, interval_s=600)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            assert idle.waiting.wait(10)
            submit_until(done, lambda op: submitter.submit(saga, operation_id=op))
            assert done.is_set(), "no NOTIFY reached the idle worker"
        finally:
            worker.stop()
            thread.join(10)
            worker.close()
            idle.close()


@pytest.mark.parametrize("path", ["one_message", "the_long_way", "release"])
def test_only_a_release_that_leaves_the_run_active_sends_a_notify(schema: str, path: str) -> None:
    """Each NOTIFY wakes every listening worker, so a release that leaves nothing to claim
    (the run finished) sends none; one that hands on a running run does.

    Notifications reach a listener in commit order: a marker the test sends after each
    release comes after anything that release sent.
    """
    store, other = open_store(pg.store_url(schema)), open_store(pg.store_url(schema))
    # The other store knows nothing of the run: its record reads the row first.
    writer = other if path == "the_long_way" else store
    channel = store._channel  # type: ignore[attr-defined]
    heard: dict[str, list[str]] = {}
    try:
        with _admin() as listener, _admin() as marker:
            listener.execute(f"LISTEN {channel}")
            for op, status in (("finished", RunStatus.COMPLETED), ("handed-on", None)):
                claim = store.create_run(_new(op), owner="w1", now=T0, lease_s=30.0).claim
                assert claim is not None
                ends = [] if status is None else [Transition("run_completed", run_status=status)]
                if path == "release":
                    if ends:
                        claim = writer.record(claim, ends, now=T0 + 1, lease_s=30.0)
                    writer.release(claim, now=T0 + 2)
                else:
                    writer.record(claim, ends, now=T0 + 1, lease_s=30.0, release=True)
                marker.execute("SELECT pg_notify(%s, %s)", (channel, f"after {op}"))
                heard[op] = []
                for note in listener.notifies(timeout=10):
                    if note.payload == f"after {op}":
                        break
                    heard[op].append(note.payload)
        assert store.load("finished").run.status is RunStatus.COMPLETED
        assert heard == {"finished": [], "handed-on": [""]}
    finally:
        store.close()
        other.close()


def test_a_snapshot_read_is_one_repeatable_read_read_only_transaction(schema: str) -> None:
    """A run and its steps are read in two statements: both must see one moment."""
    store = open_store(f"{pg.server_url()}?schema={schema}")
    try:
        seen = store._run(  # type: ignore[attr-defined]
            lambda conn: conn.execute(
                "SELECT current_setting('transaction_isolation'), "
                "current_setting('transaction_read_only')"
            ).fetchone(),
            snapshot=True,
        )
    finally:
        store.close()
    assert seen == ("repeatable read", "on")


def test_a_writer_that_stops_mid_transaction_is_idle_in_transaction_not_active(
    schema: str,
) -> None:
    """A frozen worker (SIGSTOP, a long pause) must not hold its run's row lock forever.

    The server ends a session idle in a transaction after a while and frees its locks, but
    only a session the server sees as waiting on its client: one still "active" (as in
    pipeline mode, where no batch ends before the commit) keeps the lock while it sleeps.
    """
    store = open_store(pg.store_url(schema))
    store.create_run(_new(), owner="w", now=T0, lease_s=30.0)
    locked, resume = threading.Event(), threading.Event()
    pids: list[int] = []

    def lock_then_stop(conn: Any) -> None:
        conn.execute(
            f'SELECT 1 FROM "{schema}".runs WHERE operation_id = %s FOR UPDATE', ("op-1",)
        ).fetchone()
        pids.append(conn.connection.info.backend_pid)
        locked.set()
        assert resume.wait(30)

    writer = threading.Thread(target=lambda: store._run(lock_then_stop, write=True))  # type: ignore[attr-defined]
    writer.start()
    try:
        assert locked.wait(30)
        with _admin() as admin:
            state = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (pids[0],)
            ).fetchone()
    finally:
        resume.set()
        writer.join(30)
        store.close()
    assert state == ("idle in transaction",)


def _messages_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every message this thread sends to the server from now on, as it is sent."""
    import psycopg

    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    return sent


def test_a_create_and_a_known_record_are_one_message_else_two_and_a_load_one(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message to the server is a round trip, and on a machine whose cores sleep
    between messages a round trip costs more than the server's work. An owner that knows
    the run's row (its own create, a load) sends a record's check, writes and COMMIT at
    once; a store that does not know it sends BEGIN with its read, then the writes with the
    COMMIT; a load sends all of it at once."""

    store, other = open_store(pg.store_url(schema)), open_store(pg.store_url(schema))
    try:
        claim = store.create_run(_new(), owner="w", now=T0, lease_s=30.0).claim
        assert claim is not None
        sent = _messages_sent(monkeypatch)
        assert store.create_run(_new("op-2"), owner=None, now=T0, lease_s=30.0).created
        assert len(sent) == 1
        assert ".created_here(" in sent[0]
        sent.clear()
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))
        claim = store.record(claim, [started], now=T0, lease_s=30.0)
        assert len(sent) == 1
        assert ".held_as_known(" in sent[0].split("; ")[1]
        assert "; EXECUTE sg_insert_event_1(" in sent[0]  # planned once per session
        assert sent[0].endswith("; COMMIT")
        sent.clear()
        done = Transition("step_completed", StepChange("reserve", StepStatus.COMPLETED))
        claim = other.record(claim, [done], now=T0, lease_s=30.0)
        assert len(sent) == 2
        assert sent[0].startswith("BEGIN; EXECUTE sg_lock_state_and_steps(")
        assert sent[1].endswith("; COMMIT")
        sent.clear()
        assert store.load("op-1").step("reserve").status is StepStatus.COMPLETED
        assert len(sent) == 1
        sent.clear()
        store.heartbeat(claim, now=T0, lease_s=30.0)
        assert len(sent) == 2
        sent.clear()
        store.release(claim, now=T0)
        sent.clear()
        # Only a claim's commit does not wait for the disk (see _CLAIMS_FLUSHED_LATER).
        store.claim("op-1", owner="w", now=T0, lease_s=30.0)
        assert len(sent) == 2
        assert sent[0].startswith("BEGIN; SET LOCAL synchronous_commit = off; EXECUTE")
    finally:
        monkeypatch.undo()
        store.close()
        other.close()


def test_a_record_against_a_row_moved_by_another_writer_is_made_the_long_way(
    schema: str,
) -> None:
    """A notifier's event moves the run's last seq under its owner: the owner's known row is
    then refused, nothing of the refused message is written, and the record is made again
    against the row read. Its events follow the notifier's, and carry the server's time."""
    store, notifier = open_store(pg.store_url(schema)), open_store(pg.store_url(schema))
    try:
        alert = NewAlert("alert-1", "review", {"why": "test"}, deliver_after=T0)
        raised = Transition("review_requested", alert=alert)
        claim = store.create_run(_new(), owner="w", now=T0, lease_s=30.0).claim
        assert claim is not None
        claim = store.record(claim, [raised], now=T0, lease_s=30.0)
        with _admin() as admin:
            before = admin.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        notifier.settle_alert("alert-1", now=T0)  # appends alert_delivered to the run
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))
        claim = store.record(claim, [started], now=T0, lease_s=30.0)
        with _admin() as admin:
            after = admin.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        events = store.events("op-1")
        assert [e.kind for e in events[-3:]] == [
            "review_requested",
            "alert_delivered",
            "step_started",
        ]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].from_status == "pending"
        assert events[-1].to_status == "started"
        snapshot = store.load("op-1")
        assert snapshot.step("reserve").attempts == 1
        assert before is not None
        assert after is not None
        assert float(before[0]) <= events[-1].at <= float(after[0])
        assert snapshot.run.lease_expires_at == claim.lease_expires_at == events[-1].at + 30.0
        # Known again (the load): one message, and the server's time once more.
        done = Transition("step_completed", StepChange("reserve", StepStatus.COMPLETED))
        claim = store.record(claim, [done], now=T0, lease_s=30.0)
        last = store.events("op-1")[-1]
        assert (last.kind, last.from_status, last.to_status) == (
            "step_completed", "started", "completed",
        )  # fmt: skip
        assert last.at >= events[-1].at
        assert claim.lease_expires_at == last.at + 30.0
        assert store.load("op-1").run.lease_expires_at == claim.lease_expires_at
    finally:
        store.close()
        notifier.close()


def test_the_first_load_of_a_claimed_run_is_the_claims_own_read(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker loads the run it claimed at once: the claim reads it in its own commit,
    after its writes and under its locks, and that load sends nothing. It is served once,
    and never after a write through the store."""

    store, other = open_store(pg.store_url(schema)), open_store(pg.store_url(schema))
    try:
        for op in ("op-1", "op-2"):
            assert store.create_run(_new(op), owner=None, now=T0, lease_s=30.0).created
        sent = _messages_sent(monkeypatch)
        claims = store.claim_expired(owner="w", now=T0 + 1, lease_s=30.0, limit=10)
        assert sorted(c.operation_id for c in claims) == ["op-1", "op-2"]
        assert len(sent) == 2
        sent.clear()
        first = store.load("op-1")
        assert sent == []
        assert first == other.load("op-1")  # what a read of the journal finds
        assert (first.run.owner, first.run.fencing_token) == ("w", 1)
        sent.clear()
        assert store.load("op-1") == first
        assert len(sent) == 1, "served once"
        claim = next(c for c in claims if c.operation_id == "op-2")
        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))
        store.record(claim, [started], now=T0 + 2, lease_s=30.0)
        assert store.load("op-2").step("reserve").status is StepStatus.STARTED
    finally:
        store.close()
        other.close()


@pytest.mark.parametrize("flushed_later", [False, True])
def test_reads_sent_in_one_message_each_get_their_own_rows(flushed_later: bool) -> None:
    """Whatever opens the transaction (BEGIN, and maybe a SET), and whatever writes were held
    back before them, each read of one message gets its own rows."""
    import psycopg

    from sagaguard.storage.postgres_transaction import Transaction

    with psycopg.connect(pg.server_url(), autocommit=True) as conn:
        default = conn.execute("SELECT current_setting('synchronous_commit')").fetchone()
        tx = Transaction(conn, flushed_later=flushed_later)
        tx.defer("CREATE TEMP TABLE held (n int) ON COMMIT DROP")
        tx.defer("INSERT INTO held VALUES (%s), (%s)", (1, 2))
        sets = tx.fetch_sets(
            [("SELECT n FROM held ORDER BY n", ()), ("SELECT %s, %s", ("a", None))]
        )
        assert sets == [[(1,), (2,)], [("a", None)]]
        setting = tx.execute("SELECT current_setting('synchronous_commit')").fetchone()
        assert setting == (("off",) if flushed_later else default)
        tx.commit()
        assert tx.sent
        assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_values_bound_on_the_client_come_back_as_they_were_given() -> None:
    """Quotes, backslashes, placeholder look-alikes and non-ASCII text survive binding, in a
    prepared statement's EXECUTE as in a plain one; a count mismatch or a stray ``%`` is
    refused before anything is sent."""
    import psycopg

    from sagaguard.storage.postgres_transaction import Transaction

    values = ("it's", "back\\slash\\", "%s and %%", "ünïcode ✓", 2**62, -1.5, True, None, "")
    columns = ", ".join(["%s"] * len(values))
    with psycopg.connect(pg.server_url(), autocommit=True) as conn:
        types = "text, text, text, text, int8, float8, bool, text, text"
        conn.execute(
            f"PREPARE sg_echo ({types}) AS SELECT {', '.join(f'${n}' for n in range(1, 10))}"
        )
        for statement, prepared in (
            (f"SELECT {columns}", None),
            ("echo", {"echo": ("sg_echo", f"EXECUTE sg_echo({columns})")}),
        ):
            tx = Transaction(conn, prepared=prepared)
            row = tx.execute(statement, values).fetchone()
            assert row == values
            tx.commit()
        tx = Transaction(conn)
        with pytest.raises(TypeError, match="2 placeholders, 1 parameters"):
            tx.bind("SELECT %s, %s", (1,))
        with pytest.raises(ValueError, match="only %s placeholders"):
            tx.bind("SELECT %s WHERE name LIKE 'a%'", ("x",))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(),
        st.floats(),
        st.booleans(),
    )
)
def test_a_plain_value_is_written_as_psycopg_writes_it(value: object) -> None:
    """The journal's own literals for short text and numbers are psycopg's, byte for byte;
    what they leave to psycopg (a backslash, a NUL, a non-finite float) is psycopg's own."""
    import psycopg
    from psycopg.adapt import Transformer

    from sagaguard.storage.postgres_transaction import _plain_literal

    with psycopg.connect(pg.server_url(), autocommit=True) as conn:
        try:
            expected: str | None = Transformer.from_context(conn).as_literal(value).decode()
        except psycopg.DataError:  # a NUL: psycopg refuses it, and so must the journal
            expected = None
        plain = _plain_literal(value)
        if plain is not None:
            assert plain == expected


def test_values_survive_binding_on_a_connection_that_is_not_utf8() -> None:
    """A URL may set libpq's ``client_encoding``: a statement's text, literals and all, is
    then sent in that encoding, never as UTF-8 bytes the server would misread."""
    import psycopg

    from sagaguard.storage.postgres_transaction import Transaction

    values = ("café", "naïve 'quoted'", 7, -2.5)
    with psycopg.connect(pg.server_url(), autocommit=True, client_encoding="LATIN1") as conn:
        assert conn.info.encoding == "iso8859-1"
        tx = Transaction(conn)
        row = tx.execute("SELECT %s, %s, %s, %s, octet_length(%s)", (*values, "é")).fetchone()
        tx.commit()
    # The server's own encoding (UTF-8) holds "é" in two bytes: it read the character.
    assert row == (*values, 2)


def test_a_claim_reads_the_queue_off_its_index_before_any_statistics(schema: str) -> None:
    """A journal just made has no statistics yet (autovacuum's first pass comes within a
    minute): a claim must still read the oldest runs off ``runs_active``, in its order,
    instead of sorting every waiting run."""
    import psycopg

    from sagaguard.storage import postgres_statements as sql
    from sagaguard.storage.postgres_schema import quoted_schema

    store = open_store(pg.store_url(schema))
    try:
        for number in range(1000):
            store.create_run(_new(f"waiting-{number:04d}"), owner=None, now=T0, lease_s=30.0)
    finally:
        store.close()
    statements = sql.Statements(quoted_schema(schema))
    with _admin() as conn:
        cursor = psycopg.ClientCursor(conn)
        shown = {}
        for name, query, params in (
            ("of", statements.expired_of, (None, ["checkout"], ["1"], 10)),
            ("any", statements.expired_any, (None, 10)),
        ):
            with conn.transaction():
                for setting in sql.CLAIM_PLAN:
                    conn.execute(setting)
                plan = conn.execute(f"EXPLAIN {cursor.mogrify(query, params)}").fetchall()
            shown[name] = "\n".join(row[0] for row in plan)
    for name, plan in shown.items():
        assert "Index Scan using runs_active" in plan, (name, plan)
        assert "Sort" not in plan, (name, plan)
