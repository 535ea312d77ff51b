"""``sagaguard worker``: recovers runs whose owner died, leaves live ones alone, stops cleanly.

A dead owner is simulated with the engine's own fault injection: an engine whose clock runs
an hour behind (so its lease is long expired by real time) crashes with ``SimulatedCrash``
right after the payment provider charged the card, before the result is committed. The
worker must then settle the charge by verify, never by charging again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.cli.running import redact
from sagaguard.engine import Engine, FaultPoint, SimulatedCrash
from sagaguard.engine.loading import load_saga
from sagaguard.storage import open_store
from sagaguard.storage.base import Event, RunSnapshot

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
ORDER = {"order": {"total_cents": 4990}}
HOUR = 3600.0


class CrashAt:
    """Crashes the engine at one fault point of one step, on its first attempt."""

    def __init__(self, point: FaultPoint, step_id: str) -> None:
        self.point = point
        self.step_id = step_id

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        if point is self.point and step_id == self.step_id and attempt == 1:
            raise SimulatedCrash(f"{operation_id}: died at {point.value} of {step_id}")


class Shop:
    """A journal and the example's ledger in the test's directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path}/journal.sqlite3"
        self.ledger = tmp_path / "ledger.jsonl"

    def crash(
        self,
        op: str,
        point: FaultPoint,
        step_id: str,
        *,
        skew: float = -HOUR,
        lease_s: float = 0.1,
    ) -> None:
        """Start a run with an owner that dies at ``point``; its clock is off by ``skew``."""
        clock: Callable[[], float] = lambda: time.time() + skew  # noqa: E731
        with (
            Engine(
                store=self.db,
                owner="crashed-owner",
                lease_s=lease_s,
                clock=clock,
                faults=CrashAt(point, step_id),
            ) as engine,
            pytest.raises(SimulatedCrash),
        ):
            engine.run(load_saga(RUNNABLE), operation_id=op, input=ORDER)

    def lapse(self, op: str) -> None:
        """The dead owner's lease runs out now: it claims its run again, with a lease in the past.

        A live worker must not see the lease expire while the owner still drives the run
        (it would take over mid-run); this is the point after which it may.
        """
        store = open_store(self.db)
        try:
            store.claim(op, owner="crashed-owner", now=time.time() - HOUR, lease_s=0.05)
        finally:
            store.close()

    def worker(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["worker", str(RUNNABLE), "--db", self.db, *args])

    def effects(self) -> Counter[tuple[str, str]]:
        lines = [json.loads(line) for line in self.ledger.read_text().splitlines() if line]
        return Counter((e["system"], e["action"]) for e in lines)

    def journal(self, op: str) -> tuple[RunSnapshot, list[Event]]:
        store = open_store(self.db)
        try:
            return store.load(op), store.events(op)
        finally:
            store.close()


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """A fresh journal and ledger."""
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    return Shop(tmp_path)


def test_worker_once_recovers_a_run_whose_owner_died_after_the_charge(shop: Shop) -> None:
    """The card was charged, then the owner died: the worker verifies and finishes, one charge."""
    shop.crash("o-1", FaultPoint.AFTER_CALL, "charge_payment")
    before, _ = shop.journal("o-1")
    assert before.step("charge_payment").status.value == "started"
    assert shop.effects()[("psp", "charge")] == 1

    result = shop.worker("--once")

    assert result.exit_code == 0, result.stderr
    assert "run o-1 stopped: completed" in result.stderr
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "completed"
    assert shop.effects()[("psp", "charge")] == 1
    claimed = [e for e in events if e.kind == "claimed"]
    assert claimed[-1].actor != "crashed-owner"
    assert "crashed-owner" in (claimed[-1].reason or "")
    charge = [e.kind for e in events if e.step_id == "charge_payment"]
    assert charge[-3:] == ["outcome_unknown", "verify_called", "verified_applied"]


def test_worker_retries_an_idempotent_step_with_the_same_key(shop: Shop) -> None:
    """Died before the reservation call: the retry uses the same key, one reservation exists."""
    shop.crash("o-1", FaultPoint.AFTER_CALL, "reserve_stock")

    result = shop.worker("--once")

    assert result.exit_code == 0, result.stderr
    snapshot, _ = shop.journal("o-1")
    assert snapshot.run.status.value == "completed"
    assert snapshot.step("reserve_stock").attempts == 2
    assert shop.effects()[("inventory", "reserve")] == 1


def test_worker_leaves_a_run_with_a_live_lease_alone(shop: Shop) -> None:
    """An owner whose lease is still live is never preempted, whatever it seems to be doing."""
    shop.crash("o-1", FaultPoint.AFTER_CALL, "charge_payment", skew=+HOUR)

    result = shop.worker("--once")

    assert result.exit_code == 0, result.stderr
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "running"
    assert snapshot.run.owner == "crashed-owner"
    assert not [e for e in events if e.kind == "claimed"]


def test_worker_once_with_nothing_to_do_logs_and_exits_0(shop: Shop) -> None:
    """An idle pass says it started and stopped, and exits 0."""
    result = shop.worker("--once")

    assert result.exit_code == 0, result.stderr
    assert "started" in result.stderr
    assert "checkout v1" in result.stderr
    assert "stopped" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["nope.yaml"], ("nope.yaml", "no such file")),
        ([str(RUNNABLE), str(RUNNABLE)], ("'checkout'", "already defined")),
        ([str(RUNNABLE.parent / "checkout.yaml")], ("can be planned but not run",)),
        ([str(RUNNABLE), "--interval", "0"], ("--interval",)),
        ([str(RUNNABLE), "--concurrency", "0"], ("--concurrency",)),
        ([], ("no saga to drive", "--app")),
        (["--app", "no_such_sagaguard_app"], ("no_such_sagaguard_app", "no module named")),
        (["--app", "json"], ("json: defines no Saga",)),
    ],
    ids=[
        "missing_target",
        "same_process_twice",
        "plan_only_spec",
        "zero_interval",
        "zero_concurrency",
        "nothing_to_drive",
        "missing_app",
        "app_without_sagas",
    ],
)
def test_bad_worker_input_exits_2_in_one_line(
    shop: Shop, args: list[str], fragments: tuple[str, ...]
) -> None:
    """A worker that cannot drive what it is given refuses to start, in one line."""
    result = CliRunner().invoke(app, ["worker", *args, "--db", shop.db, "--once"])

    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


APP = """
from sagaguard.engine import Saga

def _step(name):
    saga = Saga("greeting", version=name)
    saga.step(id="hello", changes=["database"], idempotent="yes")(lambda ctx: {"v": name})
    return saga

old = _step("1")
new = _step("2")
also_new = new
"""


def test_worker_app_drives_every_saga_its_module_defines(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both versions a module defines are driven; a run submitted with neither is left alone."""
    (tmp_path / "greeting_app.py").write_text(APP, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import greeting_app  # type: ignore[import-not-found]

    other = greeting_app._step("3")
    with Engine(store=shop.db) as engine:
        for op, saga in (("g-1", greeting_app.old), ("g-2", greeting_app.new), ("g-3", other)):
            engine.submit(saga, operation_id=op)

    result = CliRunner().invoke(
        app, ["worker", "--app", "greeting_app", "--db", shop.db, "--once", "--concurrency", "2"]
    )

    assert result.exit_code == 0, result.stderr
    assert "for greeting v1, greeting v2" in result.stderr
    assert [shop.journal(op)[0].step("hello").result for op in ("g-1", "g-2")] == [
        {"v": "1"},
        {"v": "2"},
    ]
    left, events = shop.journal("g-3")
    assert (left.run.fencing_token, [e.kind for e in events]) == (0, ["run_created"])


def _start_worker(shop: Shop, tmp_path: Path) -> subprocess.Popen[str]:
    env = os.environ | {"CHECKOUT_LEDGER": str(shop.ledger)}
    env.pop("SAGAGUARD_DB", None)
    argv = [sys.executable, "-m", "sagaguard", "worker", str(RUNNABLE), "--db", shop.db]
    return subprocess.Popen(
        [*argv, "--interval", "0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"no {needle!r} in worker output: {''.join(seen)}")


def _reap(process: subprocess.Popen[str]) -> None:
    # A worker that did not stop in time is killed, so a failing test leaves no process behind.
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.mark.slow
def test_worker_exits_0_on_sigterm(shop: Shop, tmp_path: Path) -> None:
    """SIGTERM stops the worker loop cleanly: exit 0 within seconds, and it says so."""
    with _start_worker(shop, tmp_path) as process:
        try:
            _wait_for_line(process, "started")
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=5)
        finally:
            _reap(process)
    assert process.returncode == 0
    assert "received SIGTERM" in rest
    assert "stopped" in rest
    assert "Traceback" not in rest


@pytest.mark.slow
def test_running_worker_recovers_a_crashed_run_then_stops_on_sigterm(
    shop: Shop, tmp_path: Path
) -> None:
    """A worker left running picks up a run that crashed after it started, then exits on TERM."""
    with _start_worker(shop, tmp_path) as process:
        try:
            _wait_for_line(process, "started")
            # Its lease holds while it drives the run, so the worker cannot take over mid-run;
            # it lapses once the owner is dead.
            shop.crash("o-1", FaultPoint.AFTER_CALL, "charge_payment", skew=0.0, lease_s=HOUR)
            shop.lapse("o-1")
            log = _wait_for_line(process, "run o-1 stopped", timeout=15)
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=5)
        finally:
            _reap(process)
    assert process.returncode == 0
    assert "run o-1 stopped: completed" in log
    assert shop.journal("o-1")[0].run.status.value == "completed"
    assert shop.effects()[("psp", "charge")] == 1


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("postgresql://bob:s3cret@db:5432/shop", "postgresql://bob:***@db:5432/shop"),
        ("sqlite:///journal.sqlite3", "sqlite:///journal.sqlite3"),
    ],
)
def test_worker_never_logs_a_journal_password(url: str, logged: str) -> None:
    """The worker's start line names its journal without the password in the URL."""
    assert redact(url) == logged
