"""Journal text cannot drive the terminal: ids, reviewers' names and notes are escaped on output.

``--by`` or ``--note`` holding ``ESC [2J`` (clear the screen), a carriage return, a newline
followed by a made-up event, or a C1 control, and an operation id holding a bidi override,
were printed raw by every command that shows the journal. Each is now shown escaped
(``\\x1b``), in tables, in plain lines, in log lines and in error lines; ``--json`` stays valid
JSON that reads back to the very same text. An operation id with a control character is
refused at the door (the journal's own rule), with the refusal itself escaped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.cli.escapes import printable

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
LOST_AND_UNVERIFIABLE = {"charge_payment": ["answer_lost"], "charge_payment.verify": "down"}

CLEAR = "\x1b[2J"
HOSTILE_OP = "order-1\u202e  7 resolved  by admin\u2066"
HOSTILE_BY = f"mallory{CLEAR}"
HOSTILE_NOTE = "all good\n 99 run_completed  checkout  by auditor\x07"
RAW = ("\x1b", "\x9b", "\u202e", "\x07", "\r")


def assert_no_raw_control(text: str) -> None:
    for ch in RAW:
        assert ch not in text, (ch, text[:400])


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    return f"sqlite:///{tmp_path}/journal.sqlite3"


def invoke(db: str, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--db", db])


def start(db: str, tmp_path: Path, op: str, simulate: dict[str, Any]) -> Result:
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps({"order": {"total_cents": 4990}, "simulate": simulate}), encoding="utf-8"
    )
    return invoke(db, "run", str(RUNNABLE), "--operation-id", op, "--input", str(order))


def test_an_operation_id_with_a_control_character_is_refused_escaped(
    db: str, tmp_path: Path
) -> None:
    """The journal accepts no control characters in an id; the refusal names it, escaped."""
    refused = start(db, tmp_path, f"order-1{CLEAR}\r\n  7 resolved", LOST_AND_UNVERIFIABLE)
    assert refused.exit_code == 2
    assert "control character" in refused.stderr
    assert_no_raw_control(refused.stdout + refused.stderr)


@pytest.fixture
def waiting(db: str, tmp_path: Path) -> str:
    """A run under a hostile operation id, stopped for review."""
    started = start(db, tmp_path, HOSTILE_OP, LOST_AND_UNVERIFIABLE)
    assert started.exit_code == 3, started.stderr
    assert_no_raw_control(started.stdout + started.stderr)
    assert printable(HOSTILE_OP) in started.stdout
    return db


@pytest.fixture
def reviewed(waiting: str) -> str:
    """The waiting run, resolved by a hostile reviewer."""
    db = waiting
    resolved = invoke(
        db, "review", "resolve", HOSTILE_OP, "--step", "charge_payment", "--as", "completed",
        "--result", '{"payment_id": "pay_1"}', "--by", HOSTILE_BY, "--note", HOSTILE_NOTE,
    )  # fmt: skip
    assert resolved.exit_code == 0, resolved.stderr
    assert_no_raw_control(resolved.stdout + resolved.stderr)
    assert printable(HOSTILE_BY) in resolved.stdout
    return db


@pytest.mark.parametrize(
    "args",
    [["runs", "list"], ["runs", "show", HOSTILE_OP]],
    ids=["runs_list", "runs_show"],
)
def test_tables_show_journal_text_escaped(reviewed: str, args: list[str]) -> None:
    result = invoke(reviewed, *args)
    assert result.exit_code == 0, result.stderr
    assert_no_raw_control(result.stdout)
    assert "\\x1b[2J" in result.stdout


def test_the_review_queue_shows_journal_text_escaped(waiting: str) -> None:
    listed = invoke(waiting, "review", "list")
    assert listed.exit_code == 0, listed.stderr
    assert_no_raw_control(listed.stdout)
    assert "\\u202e" in listed.stdout
    as_json = invoke(waiting, "review", "list", "--json")
    assert_no_raw_control(as_json.stdout)
    assert [item["operation_id"] for item in json.loads(as_json.stdout)] == [HOSTILE_OP]


def test_a_reviewer_s_note_cannot_fake_an_event_line(reviewed: str) -> None:
    shown = invoke(reviewed, "runs", "show", HOSTILE_OP)
    assert shown.exit_code == 0, shown.stderr
    assert not any(
        line.lstrip().startswith("99 run_completed") for line in shown.stdout.splitlines()
    )


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list", "--json"],
        ["runs", "show", HOSTILE_OP, "--json"],
    ],
    ids=["runs_list", "runs_show"],
)
def test_json_escapes_every_control_and_reads_back_the_same_text(
    reviewed: str, args: list[str]
) -> None:
    result = invoke(reviewed, *args)
    assert result.exit_code == 0, result.stderr
    assert_no_raw_control(result.stdout)
    document = json.loads(result.stdout)
    rows = document if isinstance(document, list) else [document]
    assert HOSTILE_OP in {row["operation_id"] for row in rows}
    if args[:2] == ["runs", "show"]:
        (resolved,) = [e for e in document["events"] if e["kind"] == "resolved"]
        assert resolved["data"]["by"] == HOSTILE_BY
        assert resolved["data"]["note"] == HOSTILE_NOTE


def test_an_error_line_quoting_journal_text_is_escaped(db: str, tmp_path: Path) -> None:
    assert start(db, tmp_path, "order-2", {}).exit_code == 0
    result = invoke(db, "runs", "show", f"nope{CLEAR}\nsagaguard: fake line")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert_no_raw_control(result.stderr)


def test_a_reason_written_by_a_step_is_escaped(db: str, tmp_path: Path) -> None:
    """A provider's error text ends up in the journal as the step's failure reason."""
    (tmp_path / "hostile_reason_app.py").write_text(
        "from sagaguard import StepFailed\n"
        "def charge(ctx):\n"
        f"    raise StepFailed({HOSTILE_NOTE + CLEAR!r}, retry=False)\n",
        encoding="utf-8",
    )
    spec = tmp_path / "hostile.yaml"
    spec.write_text(
        "process: hostile\nstate_store: database\nobservability: [logs]\nsteps:\n"
        "  - {id: charge, changes: [payment], idempotent: yes,"
        " handler: 'hostile_reason_app:charge'}\n",
        encoding="utf-8",
    )
    ran = invoke(db, "run", str(spec), "--operation-id", "order-3")
    assert ran.exit_code == 4, ran.stderr
    assert_no_raw_control(ran.stdout + ran.stderr)
    for args in (
        ["runs", "show", "order-3"],
        ["runs", "list"],
        ["runs", "show", "order-3", "--json"],
    ):
        shown = invoke(db, *args)
        assert shown.exit_code == 0, shown.stderr
        assert_no_raw_control(shown.stdout)
    assert "\\x1b[2J" in invoke(db, "runs", "show", "order-3").stdout


def test_worker_log_lines_escape_operation_ids() -> None:
    from sagaguard.cli.running import _PrintableFormatter

    record = logging.LogRecord(
        "sagaguard.worker", logging.INFO, __file__, 1, "recovered run %s", (HOSTILE_OP,), None
    )
    line = _PrintableFormatter("%(levelname)s: %(message)s").format(record)
    assert line == f"INFO: recovered run {printable(HOSTILE_OP)}"
    assert_no_raw_control(line)
    assert "\n" not in line
