"""What a person types besides the spec: ``--db``, ``--input``, ``--result``, ``--webhook-route``.

Each mistake is a clean exit 2 with one line that names the flag, before anything is
journaled; a plain path for ``--db`` works on every command, as it already did for ``demo``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sagaguard.cli import app
from tests.integration.cli import assert_one_line_error, invoke

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
ORDER = {"order": {"total_cents": 4990}}


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)


def order_file(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER) if text is None else text, encoding="utf-8")
    return path


# --- --db takes a plain path ---------------------------------------------------------------


def test_every_journal_command_takes_a_plain_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "shop journal.sqlite3"  # a space, which a URL would need quoted
    order = order_file(tmp_path)
    ran = invoke(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(order), "--db", str(journal)
    )
    assert ran.exit_code == 0, ran.stderr
    assert journal.is_file()
    listed = invoke("runs", "list", "--json", "--db", str(journal))
    assert [row["operation_id"] for row in json.loads(listed.stdout)] == ["o-1"]
    shown = invoke("runs", "show", "o-1", "--json", "--db", str(journal))
    assert json.loads(shown.stdout)["status"] == "completed"
    assert invoke("review", "list", "--json", "--db", str(journal)).stdout.strip() == "[]"
    assert invoke("worker", str(RUNNABLE), "--once", "--db", str(journal)).exit_code == 0
    monkeypatch.chdir(tmp_path)
    relative = invoke("runs", "list", "--json", "--db", journal.name)
    assert [row["operation_id"] for row in json.loads(relative.stdout)] == ["o-1"]
    monkeypatch.setenv("SAGAGUARD_DB", str(journal))
    from_env = invoke("runs", "list", "--json")
    assert [row["operation_id"] for row in json.loads(from_env.stdout)] == ["o-1"]


def test_a_missing_plain_path_is_named_by_a_read_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    assert_one_line_error(invoke("runs", "list", "--db", str(missing)), str(missing))
    assert not missing.exists()


def test_an_empty_db_is_refused() -> None:
    assert_one_line_error(invoke("runs", "list", "--db", ""), "'--db'")


# --- --input and --result ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"order": {"total_cents": 1}, "order": {"total_cents": 2}}', "'order' appears twice"),
        ('{"order": {"total_cents": 1e999}}', "1e999"),
        ('{"order": {"total_cents": -1e999}}', "1e999"),
        ('{"n": ' + "9" * 5000 + "}", "digits"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"order": NaN}', "NaN"),
    ],
    ids=["duplicate_key", "huge_float", "huge_negative", "huge_int", "deep", "nan"],
)
def test_bad_input_json_names_input_and_journals_nothing(
    tmp_path: Path, text: str, fragment: str
) -> None:
    journal = tmp_path / "journal.sqlite3"
    order = order_file(tmp_path, text)
    result = invoke(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(order), "--db", str(journal)
    )
    line = assert_one_line_error(result, f"--input {order}", fragment)
    assert len(line) < 300
    assert not journal.exists()


def test_input_from_stdin_is_held_to_the_same_rules(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(RUNNABLE),
            "--operation-id",
            "o-1",
            "--input",
            "-",
            "--db",
            str(tmp_path / "j"),
        ],
        input='{"a": 1, "a": 2}',
    )
    assert_one_line_error(result, "--input stdin", "'a' appears twice")


@pytest.mark.parametrize(
    "text", ['{"payment_id": "a", "payment_id": "b"}', '{"payment_id": 1e999}']
)
def test_a_bad_result_names_result(tmp_path: Path, text: str) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    lost = ORDER | {
        "simulate": {"charge_payment": ["answer_lost"], "charge_payment.verify": "down"}
    }
    order = order_file(tmp_path, json.dumps(lost))
    ran = invoke(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(order), "--db", journal
    )
    assert ran.exit_code == 3, ran.stderr
    resolved = invoke(
        "review", "resolve", "o-1", "--step", "charge_payment", "--as", "completed",
        "--result", text, "--by", "ada", "--note", "seen", "--db", journal,
    )  # fmt: skip
    assert_one_line_error(resolved, "--result")


# --- --webhook-route -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "worker"])
def test_a_webhook_route_no_alert_goes_to_is_refused(tmp_path: Path, command: str) -> None:
    """The checkout routes alerts to shop-oncall and finance; `finanse` would fall through."""
    journal = tmp_path / "journal.sqlite3"
    args = (
        ["--operation-id", "o-1", "--input", str(order_file(tmp_path))] if command == "run" else []
    )
    result = invoke(
        command, str(RUNNABLE), *args, "--webhook", "http://127.0.0.1:9/all",
        "--webhook-route", "finanse=http://127.0.0.1:9/money", "--db", str(journal),
    )  # fmt: skip
    assert_one_line_error(result, "--webhook-route", "'finanse'", "finance, shop-oncall")
    assert not journal.exists()


def test_a_route_given_twice_is_refused(tmp_path: Path) -> None:
    result = invoke(
        "worker", str(RUNNABLE), "--once", "--webhook", "http://127.0.0.1:9/all",
        "--webhook-route", "finance=http://127.0.0.1:9/a",
        "--webhook-route", "finance=http://127.0.0.1:9/b",
        "--db", str(tmp_path / "journal.sqlite3"),
    )  # fmt: skip
    assert_one_line_error(result, "'finance' is given twice")


# --- the shipped example inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "status"),
    [("checkout_order.json", 0, "completed"), ("checkout_order_lost_answer.json", 3, None)],
)
def test_the_shipped_checkout_inputs_run_as_the_readme_says(
    tmp_path: Path, name: str, code: int, status: str | None
) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    order = RUNNABLE.parent / name
    ran = invoke(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(order), "--db", journal
    )
    assert ran.exit_code == code, ran.stderr
    shown = json.loads(invoke("runs", "show", "o-1", "--json", "--db", journal).stdout)
    assert shown["status"] == (status or "needs_manual_review")
    assert shown["input"] == json.loads(order.read_text(encoding="utf-8"))


# --- what the fuzz found: a name too long for the file system --------------------------------

LONG = "9" * 400


@pytest.mark.parametrize(
    "args",
    [
        ["check", LONG],
        ["plan", LONG],
        ["plan", str(RUNNABLE.parent / "checkout.yaml"), "-o", f"{LONG}.md"],
        ["init", f"{LONG}.yaml"],
        ["run", LONG, "--operation-id", "o-1"],
        ["run", str(RUNNABLE), "--operation-id", "o-1", "--input", LONG],
        ["runs", "list", "--db", LONG],
        ["runs", "show", "o-1", "--db", LONG],
        ["review", "list", "--db", LONG],
        ["demo", "--db", LONG],
    ],
    ids=["check", "plan", "plan_output", "init", "run", "run_input", "runs_list", "runs_show",
         "review_list", "demo"],
)  # fmt: skip
def test_a_name_too_long_for_the_file_system_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """ENAMETOOLONG from a mere existence check used to end as an internal error."""
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(invoke(*args))
    assert "internal error" not in line
    assert list(tmp_path.iterdir()) == []
