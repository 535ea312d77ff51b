"""The acceptance harness: a shop on a SQLite journal and a file ledger, driven by processes.

A test asks :func:`shop` for a shop of one kind, starts child processes on it
(``tests/acceptance/child.py``), and inspects the same journal and ledger from the parent,
where it may also recover runs with an engine whose clock is past every lease.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sagaguard.engine import Alert, AlertKind, Engine, RecordingNotifier, Saga
from sagaguard.storage.sqlite import SQLiteStore
from sagaguard.testing import FileLedger, Violation, check_invariants
from tests.acceptance.shop import build

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 60
KILLED = -signal.SIGKILL
LATER = 3600.0
"""A clock offset past any lease a child took (leases are about a minute)."""


@dataclass
class Finished:
    """How a child process ended: its exit code, its JSON report (None if it died), stderr."""

    returncode: int
    report: dict[str, Any] | None
    stderr: str

    @property
    def killed(self) -> bool:
        """True when the process died of SIGKILL (and so printed nothing)."""
        return self.returncode == KILLED and self.report is None

    def alerts(self) -> list[Alert]:
        """The alerts the child sent, rebuilt from its report."""
        raw = (self.report or {}).get("alerts", [])
        return [Alert(**(a | {"kind": AlertKind(a["kind"])})) for a in raw]


@dataclass
class Shop:
    """One journal file and one ledger file, and the processes working on them."""

    kind: str
    journal: Path
    ledger: FileLedger
    stores: list[SQLiteStore] = field(default_factory=list)

    def spawn(
        self,
        action: str,
        *,
        op: str = "op-1",
        input: Any = None,
        crash: str | None = None,
        clock_offset: float = 0.0,
        barrier: bool = False,
        count: int | None = None,
        die_on_alert: bool = False,
    ) -> subprocess.Popen[str]:
        """Start a child process doing ``action`` (run, recover, resume)."""
        command = [
            sys.executable, "-m", "tests.acceptance.child",
            "--journal", str(self.journal), "--ledger", str(self.ledger.path),
            "--kind", self.kind, "--action", action, "--op", op,
            "--input", json.dumps({} if input is None else input),
            "--clock-offset", str(clock_offset),
        ]  # fmt: skip
        if crash is not None:
            command += ["--crash", crash]
        if barrier:
            command.append("--barrier")
        if count is not None:
            command += ["--count", str(count)]
        if die_on_alert:
            command.append("--die-on-alert")
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE if barrier else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def release(processes: list[subprocess.Popen[str]]) -> None:
        """Wait until every child spawned with ``barrier`` is ready, then let all of them go."""
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line == "ready\n", f"child {process.args} did not get ready: {line!r}"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()

    @staticmethod
    def finish(process: subprocess.Popen[str]) -> Finished:
        """Wait for a child and read its report."""
        try:
            out, err = process.communicate(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"child {process.args} hung; stderr:\n{err}")
        lines = out.strip().splitlines()
        report = json.loads(lines[-1]) if lines else None
        return Finished(process.returncode, report, err)

    def child(self, action: str, **options: Any) -> Finished:
        """Run a child to its end."""
        return self.finish(self.spawn(action, **options))

    def store(self) -> SQLiteStore:
        """The journal, opened in the test process (closed at teardown)."""
        store = SQLiteStore(path=self.journal)
        self.stores.append(store)
        return store

    def saga(self) -> Saga:
        """The shop's saga in the test process, writing to the same ledger."""
        return build(self.kind, self.ledger)

    def engine(self, *, notifier: RecordingNotifier, clock_offset: float = LATER) -> Engine:
        """An engine in the test process whose clock is past the children's leases."""
        return Engine(
            store=self.store(),
            sagas=[self.saga()],
            notifier=notifier,
            clock=lambda: time.time() + clock_offset,
            owner="recovery",
        )

    def violations(
        self, op: str, *, alerts: list[Alert] | None = None, settled: bool = True
    ) -> list[Violation]:
        """What :func:`check_invariants` finds in the journal and the ledger of ``op``."""
        store = self.store()
        return check_invariants(
            store.load(op),
            store.events(op),
            self.ledger,
            self.saga().process,
            alerts=alerts,
            settled=settled,
        )


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Callable[[str], Shop]]:
    """Make a shop of a given kind in this test's directory."""
    made: list[Shop] = []

    def make(kind: str) -> Shop:
        folder = tmp_path / f"shop-{kind}-{len(made)}"
        folder.mkdir()
        opened = Shop(
            kind=kind,
            journal=folder / "journal.sqlite3",
            ledger=FileLedger(path=folder / "calls.jsonl"),
        )
        made.append(opened)
        return opened

    yield make
    for opened in made:
        for store in opened.stores:
            store.close()
