"""``sagaguard run`` as a real process, stopped by SIGINT or SIGTERM in the middle of a charge.

The charge (tests/acceptance/signals) prints ``in step`` and waits for the test's command on
stdin, so each signal lands while the call is in flight, with no sleep for the ordering.
The command journals the call's outcome, hands the run back and exits 130 or 143; a rerun
then continues at once. A second signal forces the exit; the next owner then verifies the
call and never charges twice. A ``sys.exit`` inside a step does not become the exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sagaguard.cli import app
from sagaguard.engine import Engine
from sagaguard.engine.loading import load_saga
from sagaguard.storage import RunSnapshot, RunStatus, StepStatus
from sagaguard.storage.sqlite import SQLiteStore
from tests.acceptance.conftest import CHILD_TIMEOUT_S, LATER, ROOT
from tests.acceptance.signals.signals_steps import effects

SPEC = Path(__file__).resolve().parent / "signals" / "signals.yaml"
SPEC_1S = SPEC.with_name("signals_1s.yaml")
OP = "order-1"
HANDING_BACK = "journaling the call in flight, then handing the run back (Ctrl-C again to force)"


class Cli:
    """``sagaguard run`` processes on one journal and one ledger."""

    def __init__(self, folder: Path, spec: Path = SPEC) -> None:
        self.journal = folder / "journal.sqlite3"
        self.ledger = folder / "ledger.jsonl"
        self.env = os.environ | {"SIGNALS_LEDGER": str(self.ledger)}
        self.argv = [
            sys.executable, "-m", "sagaguard", "run", str(spec),
            "--operation-id", OP, "--db", f"sqlite:///{self.journal}",
        ]  # fmt: skip
        self._stores: list[SQLiteStore] = []

    def start(self) -> subprocess.Popen[str]:
        """Start a run; returns once its charge waits for a command (``in step``)."""
        process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "in step\n"
        return process

    def rerun(self) -> subprocess.CompletedProcess[str]:
        """The same command again, to its end (its charge is not the first attempt)."""
        return subprocess.run(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )

    def load(self) -> RunSnapshot:
        store = SQLiteStore(path=self.journal)
        self._stores.append(store)
        return store.load(OP)

    def charges(self) -> int:
        return len(effects("charge", str(self.ledger)))

    def close(self) -> None:
        for store in self._stores:
            store.close()


@pytest.fixture
def cli(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cli]:
    """A journal and a ledger in the test's folder, for SPEC or the spec the test names."""
    made = Cli(tmp_path, spec=getattr(request, "param", SPEC))
    yield made
    made.close()


def _command(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def _interrupt(process: subprocess.Popen[str], signum: signal.Signals) -> None:
    """Send ``signum`` and wait until the command says it is handing the run back."""
    process.send_signal(signum)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line == f"sagaguard: interrupted: {HANDING_BACK}\n", line


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for the command to exit with its stdin still open: a charge waiting on stdin
    must not be let go by an end of file the test did not mean to send."""
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        process.wait(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"sagaguard run hung; stderr:\n{process.stderr.read()}")
    out, err = process.stdout.read(), process.stderr.read()
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()
    return process.returncode, out, err


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_mid_charge_journals_it_hands_the_run_back_and_a_rerun_goes_on_at_once(
    cli: Cli, signum: signal.Signals, code: int
) -> None:
    process = cli.start()
    _interrupt(process, signum)
    _command(process, "go")  # the charge returns while the command waits for it

    returncode, _out, err = _finish(process)

    assert returncode == code, err
    assert f"run {OP} handed back (running)" in err
    assert "Traceback" not in err
    run = cli.load()
    assert run.run.owner is None, "the lease is released"
    assert run.run.status is RunStatus.RUNNING
    assert run.step("charge").status is StepStatus.COMPLETED, "the returned charge is journaled"
    assert run.step("charge").external_id == f"ch-{OP}:charge"
    assert run.step("ship").status is StepStatus.PENDING, "nothing more was driven"
    assert cli.charges() == 1

    rerun = cli.rerun()

    assert rerun.returncode == 0, rerun.stderr
    assert "live owner" not in rerun.stdout + rerun.stderr
    assert cli.load().run.status is RunStatus.COMPLETED
    assert cli.charges() == 1, "charged exactly once"
    assert effects("ship", str(cli.ledger)) == [f"{OP}:ship"]


def test_a_second_sigint_forces_the_exit_and_the_next_owner_never_charges_twice(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = cli.start()
    _command(process, "charge-then-hang")  # charged, its answer not given yet
    assert process.stdout is not None
    assert process.stdout.readline() == "charged\n"
    _interrupt(process, signal.SIGINT)
    process.send_signal(signal.SIGINT)

    returncode, _, err = _finish(process)

    assert returncode == 130, err
    assert "SIGINT again: exiting now" in err
    run = cli.load()
    assert run.step("charge").status is StepStatus.STARTED, "its intent is journaled"
    assert run.run.owner is not None, "the lease stays: nobody knows the call ended"
    busy = cli.rerun()
    assert busy.returncode == 5, "in progress under a live lease: nothing is called"
    assert cli.charges() == 1

    monkeypatch.setenv("SIGNALS_LEDGER", str(cli.ledger))
    with Engine(
        store=SQLiteStore(path=cli.journal),
        sagas=[load_saga(SPEC)],
        clock=lambda: time.time() + LATER,
        owner="worker",
    ) as worker:
        [recovered] = worker.recover()
        worker.store.close()

    assert recovered.run.status is RunStatus.COMPLETED
    assert "verify found it applied" in (recovered.step("charge").failure_reason or "")
    assert cli.charges() == 1, "the charge was verified, never repeated"


def test_a_step_that_calls_sys_exit_does_not_end_the_command_with_its_code(cli: Cli) -> None:
    process = cli.start()
    _command(process, "exit 7")

    returncode, out, err = _finish(process)

    assert returncode == 0, err
    run = cli.load()
    assert run.run.status is RunStatus.COMPLETED
    assert run.step("charge").attempts == 2, "verify found no charge, so it was made again"
    assert cli.charges() == 1
    assert "completed" in out


@pytest.mark.parametrize("cli", [SPEC_1S], indirect=True, ids=["timeout-1s"])
def test_a_charge_that_does_not_return_keeps_the_lease_and_the_command_says_so(cli: Cli) -> None:
    process = cli.start()
    _interrupt(process, signal.SIGTERM)  # the charge never gets its command: it still runs

    returncode, _, err = _finish(process)

    assert returncode == 143, err
    assert "the call in flight did not return within 1s" in err
    assert "stays leased to this process" in err
    run = cli.load()
    assert run.run.owner is not None, "nobody may verify or repeat a call that may still run"
    assert run.step("charge").status in (StepStatus.STARTED, StepStatus.UNKNOWN)
    assert cli.rerun().returncode == 5
    assert cli.charges() == 0


def test_the_command_restores_the_signal_handlers_it_found(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application that embeds the command keeps its own handlers once the run is over."""

    def theirs(signum: int, frame: object) -> None:
        """The embedding application's handler."""

    monkeypatch.setenv("SIGNALS_LEDGER", str(cli.ledger))
    before = {s: signal.signal(s, theirs) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(app, cli.argv[3:], input="go\n")
        after = {s: signal.getsignal(s) for s in before}
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)

    assert result.exit_code == 0, result.stderr
    assert after == {signal.SIGINT: theirs, signal.SIGTERM: theirs}
