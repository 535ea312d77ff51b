"""The fleet harness: worker processes on one PostgreSQL journal, killed and restarted.

A test asks for ``fleet``: a fresh schema holding the journal and the providers' ledger.
It starts workers (``tests/fleet/worker.py``, real processes), submits runs, kills workers
with SIGKILL and restarts them, waits (bounded) until every run stopped, and then judges the
journal against the ledger with :func:`judge`. Every connection a worker or its providers
open carries the application name ``fleet.app``, so a test can kill them all on the server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sagaguard.storage.base import Event, NewRun, RunSnapshot, RunStatus
from sagaguard.storage.postgres import PostgresStore
from sagaguard.testing.invariants import check_invariants, fenced, rollback_order
from tests import pg
from tests.fleet.ledger import PgLedger
from tests.fleet.saga import saga

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fleet.saga:saga"
READY_TIMEOUT_S = 60.0
NOT_IDEMPOTENT = tuple(s.id for s in saga.process.steps if not s.safe_to_repeat)


@dataclass
class Worker:
    """One worker process and how to start it again."""

    number: int
    process: subprocess.Popen[str]
    owner: str


@dataclass
class Fleet:
    """The journal, the ledger and the worker processes of one test."""

    schema: str
    seed: int
    logs: Path
    interval_s: float = 0.5
    lease_s: float = 2.0
    workers: dict[int, Worker] = field(default_factory=dict)
    owners: list[str] = field(default_factory=list)
    _store: PostgresStore | None = None

    @property
    def app(self) -> str:
        """The application name of every connection the fleet's processes open."""
        return f"fleet_{self.schema}"

    @property
    def journal_url(self) -> str:
        """The journal the workers share (leases on the server's clock)."""
        return pg.store_url(self.schema, application_name=self.app)

    @functools.cached_property
    def ledger(self) -> PgLedger:
        """The providers' ledger, read from the test process."""
        return PgLedger(conninfo=pg.server_url(), schema=self.schema)

    @property
    def store(self) -> PostgresStore:
        """The journal, opened in the test process (no application name: never killed)."""
        if self._store is None:
            self._store = PostgresStore.from_url(pg.store_url(self.schema))
        return self._store

    def start(
        self, number: int, *, concurrency: int = 2, interval_s: float | None = None
    ) -> Worker:
        """Start worker ``number`` and wait until it listens."""
        separator = "&" if "?" in pg.server_url() else "?"
        env = os.environ | {
            "SAGAGUARD_FLEET_LEDGER": f"{pg.server_url()}{separator}application_name={self.app}",
            "SAGAGUARD_FLEET_SCHEMA": self.schema,
            "SAGAGUARD_FLEET_SEED": str(self.seed),
        }
        command = [
            sys.executable, "-m", "tests.fleet.worker", "--db", self.journal_url, "--app", APP,
            "--concurrency", str(concurrency), "--lease", str(self.lease_s),
            "--interval", str(self.interval_s if interval_s is None else interval_s),
        ]  # fmt: skip
        with (self.logs / f"worker-{number}.log").open("a") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        line = _read_line(process, READY_TIMEOUT_S)
        if not line.startswith("ready "):
            process.kill()
            pytest.fail(f"worker {number} did not start ({line!r}); see {self.logs}")
        worker = Worker(number, process, line.split(" ", 1)[1].strip())
        self.workers[number] = worker
        self.owners.append(worker.owner)
        return worker

    def kill(self, number: int) -> None:
        """SIGKILL worker ``number`` (no drain, no release) and reap it."""
        process = self.workers.pop(number).process
        process.kill()
        _reap(process)

    def freeze(self, number: int, *, timeout_s: float = 30.0) -> int:
        """SIGSTOP worker ``number`` until others took over every run it held; SIGCONT it.

        A frozen process is the owner a lease alone cannot stop: when it wakes, it still
        believes it owns its runs, and only the fencing token refuses its writes. Returns
        how many of its runs were taken over meanwhile.
        """
        worker = self.workers[number]
        worker.process.send_signal(signal.SIGSTOP)
        try:
            held = self._held_by(worker.owner)
            deadline = time.monotonic() + timeout_s
            while self._held_by(worker.owner) and time.monotonic() < deadline:
                time.sleep(0.05)  # a bounded wait for the takeover, not an ordering
            if self._held_by(worker.owner):
                why = "\n".join(self._why_held(worker.owner))
                pytest.fail(
                    f"seed {self.seed}: nobody took over the runs of a frozen worker:\n{why}"
                )
        finally:
            worker.process.send_signal(signal.SIGCONT)
        return held

    def _why_held(self, owner: str) -> list[str]:
        """For a failure message: each held run's lease left, its row lock, the sessions."""
        import psycopg

        table = f'"{self.schema}".runs'
        lines: list[str] = []
        with psycopg.connect(pg.server_url(), autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT operation_id, status, lease_expires_at - extract(epoch FROM now()), "
                f"fencing_token FROM {table} WHERE owner = %s "
                "AND status IN ('running', 'compensating')",
                (owner,),
            ).fetchall()
            for op, status, left, token in rows:
                try:
                    with conn.transaction():
                        conn.execute(
                            f"SELECT 1 FROM {table} WHERE operation_id = %s FOR UPDATE NOWAIT",
                            (op,),
                        )
                    locked = "not locked"
                except psycopg.errors.LockNotAvailable:
                    locked = "LOCKED by another session"
                lines.append(f"{op} {status} token {token}: lease left {left:.1f}s, {locked}")
                lines.extend(f"  {_line(e)}" for e in self.store.events(op)[-6:])
            for state, query, age in conn.execute(
                "SELECT state, left(query, 120), extract(epoch FROM now() - state_change) "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            ).fetchall():
                lines.append(f"session {state} for {age:.1f}s: {query}")
        return lines

    def _held_by(self, owner: str) -> int:
        """Active runs ``owner`` holds (its lease may have expired)."""
        return sum(
            1
            for status in (RunStatus.RUNNING, RunStatus.COMPENSATING)
            for run in self.store.list_runs(status=status, limit=10_000)
            if run.owner == owner
        )

    def stop(self, number: int) -> None:
        """SIGTERM worker ``number`` and wait: it finishes the runs in hand and exits 0."""
        worker = self.workers.pop(number)
        worker.process.send_signal(signal.SIGTERM)
        assert _reap(worker.process, 60) == 0, f"worker {number} failed"

    def stop_all(self) -> None:
        """SIGTERM every worker and wait: each finishes the runs in hand and exits 0."""
        workers = list(self.workers.values())
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        self.workers.clear()
        for worker in workers:
            assert _reap(worker.process, 60) == 0, f"worker {worker.number} failed"

    def submit(self, count: int, *, prefix: str = "order") -> list[str]:
        """Submit ``count`` runs without running them; any worker takes them."""
        process = saga.process
        ops = [f"{prefix}-{n:05d}" for n in range(count)]
        for op in ops:
            new = NewRun(op, process.name, process.version, {"n": op}, STEP_IDS)
            self.store.create_run(new, owner=None, now=time.time(), lease_s=self.lease_s)
        return ops

    def statuses(self, ops: list[str]) -> Counter[RunStatus]:
        """How many of ``ops`` are in each status now."""
        found = Counter[RunStatus]()
        for start in range(0, len(ops), 500):
            for snapshot in self.store.load_many(ops[start : start + 500]):
                found[snapshot.run.status] += 1
        return found

    def wait_settled(self, ops: list[str], *, timeout_s: float, between: Callable[[], Any]) -> None:
        """Wait until no run of ``ops`` is active, calling ``between`` while some are."""
        deadline = time.monotonic() + timeout_s
        while True:
            counts = self.statuses(ops)
            active = sum(n for status, n in counts.items() if status.active)
            if not active:
                return
            if time.monotonic() > deadline:
                stuck = [r.operation_id for r in self.store.list_runs(status=RunStatus.RUNNING)]
                stuck += [
                    r.operation_id for r in self.store.list_runs(status=RunStatus.COMPENSATING)
                ]
                pytest.fail(
                    f"seed {self.seed}: {active} runs still active: {dict(counts)}; the first:\n"
                    + "\n".join(self.story(stuck[0]) if stuck else [])
                )
            between()

    def story(self, op: str) -> list[str]:
        """A run's trail and its calls, one line each, for a failure message."""
        self.ledger.close()  # read on a fresh connection: the server may have restarted since
        calls = [f"ledger: {c}" for c in self.ledger.entries() if c.operation_id == op]
        return [_line(e) for e in self.store.events(op)] + calls

    def close(self) -> None:
        """Kill what still runs, close the test's store."""
        for worker in list(self.workers.values()):
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            _reap(worker.process)
        self.workers.clear()
        if self._store is not None:
            self._store.close()
        self.ledger.close()


STEP_IDS = tuple(step.id for step in saga.process.steps)


def _reap(process: subprocess.Popen[str], timeout_s: float = 30) -> int:
    """Wait for a child and close its pipe; its exit code."""
    code = process.wait(timeout=timeout_s)
    if process.stdout is not None:
        process.stdout.close()
    return code


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The child's next stdout line, or "" if it exits or stays silent for ``timeout_s``."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return ""
    return process.stdout.readline()


def judge(fleet: Fleet, ops: list[str]) -> dict[str, Any]:
    """Every run stopped and every invariant held, by the journal and the ledger; the figures.

    Fails the test naming the seed and the first violations. Returns counts worth logging.
    """
    fleet.ledger.close()  # read on a fresh connection: the server may have restarted since
    store, entries = fleet.store, fleet.ledger.entries()
    by_run: dict[str, list[Any]] = {}
    for entry in entries:
        by_run.setdefault(entry.operation_id, []).append(entry)
    problems: list[str] = []
    statuses = Counter[str]()
    takeovers = 0
    snapshots: list[RunSnapshot] = []
    trail: list[str] = []
    for start in range(0, len(ops), 500):
        snapshots += store.load_many(ops[start : start + 500])
    assert len(snapshots) == len(ops), f"seed {fleet.seed}: runs missing from the journal"
    for snapshot in snapshots:
        op = snapshot.run.operation_id
        statuses[snapshot.run.status.value] += 1
        events = store.events(op)
        calls = by_run.get(op, [])
        takeovers += sum(1 for e in events if e.kind == "claimed" and e.reason)
        found = [
            *check_invariants(snapshot, events, calls, saga.process, settled=True),
            *rollback_order(events, calls),
            *fenced(events, calls),
        ]
        problems += [str(v) for v in found]
        if found and not trail:
            trail = fleet.story(op)
    problems += _double_effects(fleet.ledger)
    if problems:
        shown = "\n".join(problems[:20])
        story = "\n".join(trail)
        pytest.fail(
            f"seed {fleet.seed}: {len(problems)} violations, the first:\n{shown}\n"
            f"the first offending run's trail:\n{story}"
        )
    return {"statuses": dict(statuses), "takeovers": takeovers, "calls": len(entries)}


def _line(event: Event) -> str:
    return (
        f"{event.seq} {event.at:.3f} {event.actor} {event.kind} {event.step_id or ''} "
        f"{event.from_status}->{event.to_status} {event.reason or ''} {event.data or ''}"
    )


def _double_effects(ledger: PgLedger) -> list[str]:
    """From the ledger alone: no second effect of a non-idempotent step, no double undo."""
    out = []
    forward = {(op, step): n for op, step, kind, n in ledger.effects() if kind == "call"}
    for op, step, kind, count in ledger.effects():
        if kind == "call" and step in NOT_IDEMPOTENT and count > 1:
            out.append(f"{op}/{step}: the provider applied a non-idempotent call {count} times")
        if kind == "compensate" and count > 1:
            out.append(f"{op}/{step}: compensated {count} times")
        if kind == "compensate" and count and not forward.get((op, step)):
            out.append(f"{op}/{step}: compensated, but its call never took effect")
    return out


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fleet on a fresh schema; its workers are killed and the schema dropped at the end."""
    pg.require()
    seed = int(os.environ.get("SAGAGUARD_FLEET_SEED", str(int.from_bytes(os.urandom(4)))))
    print(f"fleet seed {seed} (rerun with SAGAGUARD_FLEET_SEED={seed})")
    schema = pg.fresh_schema()
    made = Fleet(schema=schema, seed=seed, logs=tmp_path)
    made.store.count_runs()  # the journal's tables exist before any worker starts
    made.ledger.create()
    try:
        yield made
    finally:
        made.close()
        pg.drop_schema(schema)
