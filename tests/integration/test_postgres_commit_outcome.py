"""A write whose connection dies around its commit lands exactly once, never twice.

The database-fault test found a backend killed during ``record()`` leaving that record's
transitions written twice under the same claim: the COMMIT was answered, then the
connection died, and a second COMMIT sent on the way out failed as if nothing had
committed, so the whole transaction ran again (``after_commit`` below). The seam below
kills the backend for real (``pg_terminate_backend``) at the chosen point of one
transaction, on the driver's own calls, so each path runs every time rather than about
once in four runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest

from sagaguard.exceptions import StaleOwnerError
from sagaguard.storage import NewRun, StepChange, StepStatus, Transition
from sagaguard.storage.base import Claim
from sagaguard.storage.postgres import PostgresStore
from sagaguard.storage.postgres_transaction import Transaction
from tests import pg
from tests.pg import schema

pytestmark = pytest.mark.postgres
__all__ = ["schema"]  # the fixture, used by name

STARTED = Transition("step_started", StepChange("reserve", StepStatus.STARTED, attempts=1))


def _kill(conn: psycopg.Connection[Any]) -> None:
    """Terminate ``conn``'s backend, returning once the server has really ended it."""
    pid = conn.info.backend_pid
    with psycopg.connect(pg.server_url(), autocommit=True, connect_timeout=10) as admin:
        # With a timeout the server waits for the backend to exit (PostgreSQL 14+).
        row = admin.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone()
    assert row == (True,), f"backend {pid} outlived pg_terminate_backend"


class Fault:
    """Where the test thread's next write transaction loses its backend (set ``at``).

    Only the test's own thread: the pool configures new connections on threads of its own,
    with a commit of their own, and those must not take the fault.
    """

    def __init__(self) -> None:
        self.at: str | None = None
        self.meanwhile: Callable[[], None] | None = None
        """Run while the lost answer is being found out (``answer_lost``)."""
        self._thread = threading.get_ident()

    def fire(self, where: str) -> bool:
        """True once, at the armed point, on the test's thread."""
        if self.at != where or threading.get_ident() != self._thread:
            return False
        self.at = None
        return True


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fault]:
    """A seam on the store's commits (every write transaction ends with one of them).

    ``before_commit``: the backend dies before the COMMIT is sent: nothing landed.
    ``answer_lost``: the COMMIT lands, then the backend dies and its answer never arrives.
    ``after_commit``: the COMMIT is answered, then the backend dies before the connection
    goes back to the pool: it landed, and nothing may run it again.
    """
    armed = Fault()

    def faulty(commit: Callable[..., Any]) -> Callable[..., Any]:
        def commit_with_fault(self: Transaction, *args: Any, **kwargs: Any) -> Any:
            if armed.fire("before_commit"):
                _kill(self.connection)
            elif armed.fire("answer_lost"):
                commit(self, *args, **kwargs)
                _kill(self.connection)
                if armed.meanwhile is not None:
                    armed.meanwhile()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            elif armed.fire("after_commit"):
                answer = commit(self, *args, **kwargs)
                _kill(self.connection)
                return answer
            return commit(self, *args, **kwargs)

        return commit_with_fault

    # A write sent whole (a known record, a create) commits in the message it reads by.
    for name in ("commit", "commit_reading"):
        monkeypatch.setattr(Transaction, name, faulty(getattr(Transaction, name)))
    yield armed
    assert armed.at is None, f"the fault {armed.at!r} never fired"


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    opened = PostgresStore.from_url(pg.store_url(schema, reconnect_s="30"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def other(schema: str) -> Iterator[PostgresStore]:
    """A second store, on the caller's clock, to take the run over with."""
    opened = PostgresStore.from_url(pg.store_url(schema, clock="caller"))
    try:
        yield opened
    finally:
        opened.close()


def _taking_over(other: PostgresStore) -> Callable[[], None]:
    def take_over() -> None:
        # Past the 30 s lease by the caller's clock: the run is free to take.
        other.claim("op-1", owner="other", now=time.time() + 60.0, lease_s=30.0)

    return take_over


def _claimed(store: PostgresStore) -> Claim:
    new = NewRun("op-1", "checkout", "1", None, ("reserve",))
    claim = store.create_run(new, owner="w", now=0.0, lease_s=30.0).claim
    assert claim is not None
    return claim


def _written_once(store: PostgresStore, *, then: Sequence[str] = ()) -> None:
    kinds = [e.kind for e in store.events("op-1")]
    assert kinds == ["run_created", "step_started", *then]
    assert store.load("op-1").step("reserve").attempts == 1


@pytest.mark.parametrize("known", [True, False], ids=["one_message", "the_long_way"])
@pytest.mark.parametrize("where", ["after_commit", "answer_lost", "before_commit"])
def test_a_record_is_written_once_whoever_loses_the_connection_around_its_commit(
    store: PostgresStore, other: PostgresStore, fault: Fault, where: str, known: bool
) -> None:
    """The owner that created the run knows its row and sends a record whole; a store that
    does not (``other``) reads the row first. Either way the record lands once."""
    claim = _claimed(store)
    writer = store if known else other
    fault.at = where
    renewed = writer.record(claim, [STARTED], now=0.0, lease_s=30.0)
    assert fault.at is None, "the fault fired at the record's own commit"
    assert (renewed.owner, renewed.fencing_token) == ("w", claim.fencing_token)
    _written_once(store)
    # The claim it returned is current: the next write under it goes through.
    store.heartbeat(renewed, now=0.0, lease_s=30.0)


def test_a_releasing_record_whose_answer_was_lost_is_not_refused_as_stale(
    store: PostgresStore, fault: Fault
) -> None:
    """Its commit cleared the owner, so only the token tells its rerun that it landed."""
    claim = _claimed(store)
    fault.at = "answer_lost"
    store.record(claim, [STARTED], now=0.0, lease_s=30.0, release=True)
    kinds = [e.kind for e in store.events("op-1")]
    assert kinds == ["run_created", "step_started", "released"]
    assert store.load("op-1").run.owner is None


def test_a_record_whose_answer_was_lost_is_stale_if_its_run_was_taken_over_meanwhile(
    store: PostgresStore, fault: Fault, other: PostgresStore
) -> None:
    """Its token proves the write landed, not that the claim still holds: the caller must
    hear that another owner has the run now."""
    claim = _claimed(store)
    fault.meanwhile = _taking_over(other)
    fault.at = "answer_lost"
    with pytest.raises(StaleOwnerError):
        store.record(claim, [STARTED], now=0.0, lease_s=30.0)
    _written_once(store, then=["claimed"])


@pytest.mark.parametrize("where", ["after_commit", "answer_lost", "before_commit"])
def test_a_heartbeat_whose_commit_outcome_is_unknown_renews_once_and_returns(
    store: PostgresStore, fault: Fault, where: str
) -> None:
    claim = _claimed(store)
    fault.at = where
    renewed = store.heartbeat(claim, now=0.0, lease_s=60.0)
    assert (renewed.owner, renewed.fencing_token) == ("w", claim.fencing_token)
    lease = store.load("op-1").run.lease_expires_at
    assert lease is not None
    assert lease == pytest.approx(renewed.lease_expires_at)
    assert [e.kind for e in store.events("op-1")] == ["run_created"]


@pytest.mark.parametrize("where", ["after_commit", "answer_lost", "before_commit"])
def test_a_release_whose_commit_outcome_is_unknown_is_not_refused_as_stale(
    store: PostgresStore, fault: Fault, where: str
) -> None:
    """Its commit cleared the owner; the rerun knows that state as its own release."""
    claim = _claimed(store)
    fault.at = where
    store.release(claim, now=0.0)
    assert store.load("op-1").run.owner is None
    assert [e.kind for e in store.events("op-1")] == ["run_created", "released"]


def test_a_release_rerun_after_a_takeover_is_refused_as_stale(
    store: PostgresStore, fault: Fault, other: PostgresStore
) -> None:
    """A landed release is recognised by its unmoved token: once another owner has claimed
    the run, the rerun must not pass for the release (the run is someone else's)."""
    claim = _claimed(store)
    fault.meanwhile = _taking_over(other)
    fault.at = "answer_lost"
    with pytest.raises(StaleOwnerError):
        store.release(claim, now=0.0)
    assert store.load("op-1").run.owner == "other"


@pytest.mark.parametrize("where", ["after_commit", "answer_lost", "before_commit"])
def test_a_claim_whose_commit_outcome_is_unknown_returns_a_current_claim(
    store: PostgresStore, fault: Fault, where: str
) -> None:
    claim = _claimed(store)
    store.release(claim, now=0.0)
    fault.at = where
    taken = store.claim("op-1", owner="w2", now=0.0, lease_s=30.0)
    run = store.load("op-1").run
    assert (run.owner, run.fencing_token) == ("w2", taken.fencing_token)
    store.heartbeat(taken, now=0.0, lease_s=30.0)  # current: no StaleOwnerError


@pytest.mark.parametrize("owner", ["w", None], ids=["run", "submit"])
@pytest.mark.parametrize("where", ["after_commit", "answer_lost", "before_commit"])
def test_a_create_sent_whole_is_written_once_and_known_as_its_own(
    store: PostgresStore, fault: Fault, where: str, owner: str | None
) -> None:
    """A create of a new operation id is one message; whatever happens to its commit, the
    run is made once and the creator hears it created it (with its claim, if it owns it)."""
    new = NewRun("op-1", "checkout", "1", {"n": 1}, ("reserve", "charge"))
    fault.at = where
    created = store.create_run(new, owner=owner, now=0.0, lease_s=30.0)
    assert fault.at is None, "the fault fired at the create's own commit"
    assert created.created
    assert [e.kind for e in store.events("op-1")] == ["run_created"]
    snapshot = store.load("op-1")
    assert [s.step_id for s in snapshot.steps] == ["reserve", "charge"]
    assert snapshot.run.created_at == created.snapshot.run.created_at
    if owner is None:
        assert created.claim is None
        assert snapshot.run.owner is None
    else:
        assert created.claim is not None
        assert created.claim.fencing_token == 1
        assert snapshot.run.lease_expires_at == pytest.approx(created.claim.lease_expires_at)
    again = store.create_run(new, owner="w2", now=0.0, lease_s=30.0)
    assert not again.created
    assert again.claim is None
