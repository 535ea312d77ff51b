"""``sagaguard run``: one run end to end on a SQLite journal, with the runnable checkout example.

The example's simulated providers append every effect to a ledger file, so each test
asserts on the outside world (how many charges, refunds, ...) as well as on the journal.
Exit codes: 0 completed, 2 bad input, 3 needs review, 4 rolled back.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.engine import Engine, FaultPoint, SimulatedCrash
from sagaguard.engine.loading import load_saga
from sagaguard.exceptions import StaleOwnerError
from sagaguard.storage import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNNABLE = EXAMPLES / "checkout_runnable.yaml"
PLAN_ONLY = EXAMPLES / "checkout.yaml"
ORDER = {"order": {"total_cents": 4990, "email": "ada@example.com"}}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example providers' ledger file, fresh for each test."""
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("CHECKOUT_LEDGER", str(ledger))
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    return ledger


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A journal URL in the test's own directory."""
    return f"sqlite:///{tmp_path}/journal.sqlite3"


def effects(ledger: Path) -> Counter[tuple[str, str]]:
    """How many effects of each (system, action) the providers hold."""
    if not ledger.exists():
        return Counter()
    lines = [json.loads(line) for line in ledger.read_text().splitlines() if line]
    return Counter((e["system"], e["action"]) for e in lines)


def write_input(tmp_path: Path, value: Any, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def run(db: str, input_path: Path | str, op: str = "order-1", *extra: str) -> Result:
    argv = ["run", str(RUNNABLE), "--operation-id", op, "--input", str(input_path), "--db", db]
    return CliRunner().invoke(app, [*argv, *extra])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_completes_and_prints_the_step_timeline(world: Path, db: str, tmp_path: Path) -> None:
    """A clean run exits 0 and shows every step completed with its external id."""
    result = run(db, write_input(tmp_path, ORDER))

    assert result.exit_code == 0, result.stderr
    for step in ("create_order", "reserve_stock", "charge_payment", "book_delivery"):
        assert step in result.stdout
    assert "pay_0001" in result.stdout
    assert "completed" in result.stdout
    assert effects(world)[("psp", "charge")] == 1


def test_run_json_is_the_journal(world: Path, db: str, tmp_path: Path) -> None:
    """``--json`` prints the run as the journal holds it, external ids included."""
    result = run(db, write_input(tmp_path, ORDER), "order-1", "--json")

    assert result.exit_code == 0, result.stderr
    view = json.loads(result.stdout)
    store = open_store(db)
    try:
        snapshot = store.load("order-1")
    finally:
        store.close()
    assert view["status"] == snapshot.run.status.value == "completed"
    assert [s["step_id"] for s in view["steps"]] == [s.step_id for s in snapshot.steps]
    charge = next(s for s in view["steps"] if s["step_id"] == "charge_payment")
    assert charge["external_id"] == snapshot.step("charge_payment").external_id
    assert charge["attempts"] == 1


def test_lost_answer_is_verified_and_never_charged_twice(
    world: Path, db: str, tmp_path: Path
) -> None:
    """The PSP charges then times out: verify finds the charge, the run completes, one charge."""
    payload = ORDER | {"simulate": {"charge_payment": ["answer_lost"]}}
    result = run(db, write_input(tmp_path, payload), "order-1", "--json")

    assert result.exit_code == 0, result.stderr
    assert effects(world)[("psp", "charge")] == 1
    store = open_store(db)
    try:
        kinds = [e.kind for e in store.events("order-1") if e.step_id == "charge_payment"]
    finally:
        store.close()
    assert kinds == ["step_started", "outcome_unknown", "verify_called", "verified_applied"]


def test_input_is_read_from_stdin(world: Path, db: str) -> None:
    """``--input -`` reads the JSON input from stdin."""
    result = CliRunner().invoke(
        app,
        ["run", str(RUNNABLE), "--operation-id", "o-stdin", "--input", "-", "--db", db, "--json"],
        input=json.dumps({"order": {"total_cents": 1234}}),
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input"] == {"order": {"total_cents": 1234}}


def test_duplicate_run_returns_the_recorded_run_without_new_effects(
    world: Path, db: str, tmp_path: Path
) -> None:
    """The same operation id and input again: same run, no step called, nothing journaled."""
    path = write_input(tmp_path, ORDER)
    first = run(db, path, "order-1", "--json")
    before = effects(world)
    store = open_store(db)
    try:
        events_before = len(store.events("order-1"))
    finally:
        store.close()

    again = run(db, path)
    again_json = run(db, path, "order-1", "--json")

    assert again.exit_code == 0, again.stderr
    assert "already ran" in again.stdout
    assert json.loads(again_json.stdout) == json.loads(first.stdout)
    assert effects(world) == before
    store = open_store(db)
    try:
        assert len(store.events("order-1")) == events_before
    finally:
        store.close()


def test_conflicting_input_under_one_operation_id_exits_2(
    world: Path, db: str, tmp_path: Path
) -> None:
    """A different input under an existing operation id is refused in one line; nothing runs."""
    run(db, write_input(tmp_path, ORDER))
    before = effects(world)

    other = write_input(tmp_path, {"order": {"total_cents": 1}}, "other.json")
    result = run(db, other)

    assert_one_line_error(result, "order-1", "different input")
    assert effects(world) == before


def test_spec_without_handlers_exits_2(world: Path, db: str, tmp_path: Path) -> None:
    """A plan-only spec cannot run: one line names the file and says why."""
    path = write_input(tmp_path, {})
    argv = ["run", str(PLAN_ONLY), "--operation-id", "o", "--input", str(path), "--db", db]
    result = CliRunner().invoke(app, argv)

    assert_one_line_error(result, "checkout.yaml", "can be planned but not run")
    assert not world.exists()


def test_needs_review_exits_3_and_alerts(world: Path, db: str, tmp_path: Path) -> None:
    """Verify cannot answer: the run waits for a person (exit 3) and an alert is logged."""
    payload = ORDER | {
        "simulate": {"charge_payment": "answer_lost", "charge_payment.verify": "down"}
    }
    result = run(db, write_input(tmp_path, payload))

    assert result.exit_code == 3, result.stderr
    assert "needs_manual_review" in result.stdout
    assert "review list" in result.stdout
    alert_lines = [line for line in result.stderr.splitlines() if "needs_manual_review" in line]
    assert len(alert_lines) == 1
    assert "finance" in alert_lines[0]


def test_rollback_exits_4(world: Path, db: str, tmp_path: Path) -> None:
    """Delivery refused on every attempt: the run is compensated (exit 4), payment refunded."""
    payload = ORDER | {"simulate": {"book_delivery": "carrier_down"}}
    result = run(db, write_input(tmp_path, payload))

    assert result.exit_code == 4, result.stderr
    assert "compensated" in result.stdout
    done = effects(world)
    assert done[("psp", "charge")] == done[("psp", "refund")] == 1
    assert done[("inventory", "reserve")] == done[("inventory", "release")] == 1


def test_help_documents_the_exit_codes() -> None:
    """Scripts read the exit codes from ``run --help``."""
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("0 completed", "2 bad input", "3 needs manual review", "4 compensated"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"order": {"total_cents": 1},\n  oops}', ("input.json", "line 2, column 3")),
        ("", ("input.json", "empty")),
        ('{"total": NaN}', ("input.json", "NaN")),
        (b"\xff\xfe", ("input.json", "UTF-8")),
    ],
    ids=["invalid_json", "empty", "nan", "not_utf8"],
)
def test_bad_input_file_exits_2_naming_file_and_place(
    world: Path, db: str, tmp_path: Path, content: str | bytes, fragments: tuple[str, ...]
) -> None:
    """Bad input JSON is one line naming the file and, for a syntax error, line and column."""
    path = tmp_path / "input.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")

    assert_one_line_error(run(db, path), *fragments)
    assert not world.exists()


def test_bad_json_on_stdin_names_stdin(world: Path, db: str) -> None:
    """Bad JSON piped in names stdin and the place."""
    result = CliRunner().invoke(
        app,
        ["run", str(RUNNABLE), "--operation-id", "o", "--input", "-", "--db", db],
        input="[1, 2",
    )
    assert_one_line_error(result, "stdin", "line 1, column 6")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--input", "missing.json"], ("missing.json", "no such file")),
        (["--db", "mysql://nowhere/x"], ("unsupported journal URL",)),
        (["--db", "sqlite:////no/such/dir/j.sqlite3"], ("/no/such/dir",)),
        (["--webhook", "ftp://example.com"], ("--webhook", "http")),
        (["--webhook-route", "finance"], ("--webhook-route", "ROUTE=URL")),
        (["--webhook-route", "finance=http://x"], ("--webhook-route needs --webhook",)),
        (
            ["--webhook", "http://x", "--webhook-route", "finance=ftp://x"],
            ("--webhook-route", "http"),
        ),
        (["--operation-id", "  "], ("--operation-id",)),
    ],
    ids=[
        "missing_input",
        "bad_db_scheme",
        "db_dir_missing",
        "bad_webhook",
        "route_without_url",
        "route_without_webhook",
        "route_not_http",
        "blank_op",
    ],
)
def test_bad_options_exit_2_in_one_line(
    world: Path, db: str, tmp_path: Path, args: list[str], fragments: tuple[str, ...]
) -> None:
    """Every bad option is one line on stderr naming the option or value, never a traceback."""
    base = {"--input": str(write_input(tmp_path, ORDER)), "--db": db, "--operation-id": "o"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["run", str(RUNNABLE)] + [part for pair in base.items() for part in pair]
    assert_one_line_error(CliRunner().invoke(app, argv), *fragments)


def test_missing_target_exits_2(db: str, tmp_path: Path) -> None:
    """A target that is neither a file nor module:attr is one line naming it."""
    result = CliRunner().invoke(
        app, ["run", str(tmp_path / "nope.yaml"), "--operation-id", "o", "--db", db]
    )
    assert_one_line_error(result, "nope.yaml", "no such file")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint that records the JSON bodies posted to it."""
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_receives_the_review_alert(
    world: Path, db: str, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    """``--webhook`` POSTs the needs_manual_review alert as JSON with its route."""
    url, received = webhook
    payload = ORDER | {
        "simulate": {"charge_payment": "answer_lost", "charge_payment.verify": "down"}
    }
    result = run(db, write_input(tmp_path, payload), "order-1", "--webhook", url)

    assert result.exit_code == 3, result.stderr
    assert len(received) == 1
    assert received[0]["kind"] == "needs_manual_review"
    assert received[0]["operation_id"] == "order-1"
    assert received[0]["step_id"] == "charge_payment"
    assert received[0]["route"] == "finance"


@pytest.mark.slow
def test_run_as_a_real_process(world: Path, db: str, tmp_path: Path) -> None:
    """The installed command line runs the example and exits 0; bad JSON exits 2 in one line."""
    env = os.environ | {"CHECKOUT_LEDGER": str(world)}
    good = write_input(tmp_path, ORDER)
    argv = [sys.executable, "-m", "sagaguard", "run", str(RUNNABLE), "--operation-id", "p-1"]
    done = subprocess.run(
        [*argv, "--input", str(good), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert effects(world)[("psp", "charge")] == 1

    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    failed = subprocess.run(
        [*argv, "--input", str(bad), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2
    assert len(failed.stderr.splitlines()) == 1
    assert "Traceback" not in failed.stderr


class _DieBeforeCharging:
    """Stands for an owner that dies right before calling the payment provider."""

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        if point is FaultPoint.BEFORE_CALL and step_id == "charge_payment":
            raise SimulatedCrash(operation_id)


def test_run_owned_by_a_live_owner_exits_5_and_calls_nothing(
    world: Path, db: str, tmp_path: Path
) -> None:
    """Another owner's lease is live: the command shows the run and leaves it alone (exit 5)."""
    later = time.time() + 3600  # its lease runs an hour past now
    with (
        Engine(store=db, owner="other", clock=lambda: later, faults=_DieBeforeCharging()) as other,
        pytest.raises(SimulatedCrash),
    ):
        other.run(load_saga(RUNNABLE), operation_id="order-1", input=ORDER)
    before = effects(world)

    result = run(db, write_input(tmp_path, ORDER))

    assert result.exit_code == 5, result.stderr
    assert "in progress under another live owner" in result.stdout
    assert effects(world) == before
    store = open_store(db)
    try:
        assert store.load("order-1").run.owner == "other"
    finally:
        store.close()


def test_a_route_with_its_own_webhook_gets_its_alerts_there(
    world: Path, db: str, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    """Money alerts go to finance's endpoint; the default endpoint hears nothing of them."""
    finance_url, finance = webhook
    payload = ORDER | {
        "simulate": {"charge_payment": "answer_lost", "charge_payment.verify": "down"}
    }
    result = run(
        db,
        write_input(tmp_path, payload),
        "order-1",
        "--webhook",
        "http://127.0.0.1:9/unused",
        "--webhook-route",
        f"finance={finance_url}",
    )

    assert result.exit_code == 3, result.stderr
    assert [(a["kind"], a["route"]) for a in finance] == [("needs_manual_review", "finance")]


def test_a_run_taken_over_mid_way_exits_5_not_2(
    world: Path, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Losing the lease is not bad input: the new owner finishes the run; say so."""

    def stalled(self: Engine, *args: Any, **kwargs: Any) -> Any:
        raise StaleOwnerError("'w' no longer holds run 'o-stale' (token 1, current 2)")

    monkeypatch.setattr(Engine, "run_detailed", stalled)
    result = run(db, write_input(tmp_path, ORDER), "o-stale")

    assert result.exit_code == 5
    [line] = result.stderr.splitlines()
    assert "taken over by another owner" in line
    assert "runs show o-stale" in line
