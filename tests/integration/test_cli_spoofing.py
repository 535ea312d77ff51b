"""Journal text cannot drive the terminal: ids, reviewers' names and notes are escaped on output.

An operation id, ``--by`` or ``--note`` holding ``ESC [2J`` (clear the screen), a carriage
return, a newline followed by a made-up event, a C1 control or a bidi override was printed
raw by every command that shows the journal. Each is now shown escaped (``\\x1b``), in
tables, in plain lines, in log lines and in error lines; ``--json`` stays valid JSON that
reads back to the very same text. The journal refuses a new operation id with a control
character, but still accepts a bidi override, and a journal written before that check may
hold anything: both are shown escaped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.cli.escapes import printable

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
LOST_AND_UNVERIFIABLE = {"charge_payment": ["answer_lost"], "charge_payment.verify": "down"}

CLEAR = "\x1b[2J"
HOSTILE_OP = "order-1\u202egnp.exe\u2066"
"""What the journal accepts as an operation id, yet reads backwards on a terminal."""
OLD_HOSTILE_OP = f"order-9{CLEAR}\r\n  7 resolved  by admin\x9b31m"
"""An id a journal written before ids were checked may hold."""
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
    assert "\\u202e" in result.stdout
    assert "mallory\\x1b[2J" in result.stdout or args[:2] == ["runs", "list"]


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


def test_a_new_operation_id_with_a_control_character_is_refused_escaped(
    db: str, tmp_path: Path
) -> None:
    result = start(db, tmp_path, OLD_HOSTILE_OP, {})
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert_no_raw_control(result.stderr)
    assert "control character" in result.stderr


def test_an_id_an_older_journal_holds_is_listed_escaped(db: str, tmp_path: Path) -> None:
    assert start(db, tmp_path, "order-9", {}).exit_code == 0
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:  # what `runs list` reads
        conn.execute("UPDATE runs SET operation_id = ?", (OLD_HOSTILE_OP,))
    listed = invoke(db, "runs", "list")
    assert listed.exit_code == 0, listed.stderr
    assert_no_raw_control(listed.stdout)
    assert "order-9\\x1b[2J" in listed.stdout
    as_json = invoke(db, "runs", "list", "--json")
    assert_no_raw_control(as_json.stdout)
    assert [row["operation_id"] for row in json.loads(as_json.stdout)] == [OLD_HOSTILE_OP]


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
