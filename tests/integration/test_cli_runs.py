"""``sagaguard runs list`` and ``runs show``: the journal read back, in a terminal and as JSON.

Runs are made with the runnable checkout example through ``sagaguard run``, then read back;
the JSON is compared with what the store itself holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.storage import open_store

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
ORDER = {"order": {"total_cents": 4990}}
NARROW = {"COLUMNS": "80"}


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A journal holding three runs: completed (o-done), rolled back (o-back), review (o-rev).

    Shared by the module: every test here only reads it.
    """
    tmp_path = tmp_path_factory.mktemp("runs")
    url = f"sqlite:///{tmp_path}/journal.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
        _make_runs(tmp_path, url)
    return url


@pytest.fixture
def db(journal: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared journal's URL, with no journal named by the environment."""
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    return journal


def _make_runs(tmp_path: Path, url: str) -> None:
    inputs: dict[str, Any] = {
        "o-done": ORDER,
        "o-back": ORDER | {"simulate": {"book_delivery": "carrier_down"}},
        "o-rev": ORDER
        | {"simulate": {"charge_payment": "answer_lost", "charge_payment.verify": "down"}},
    }
    for op, payload in inputs.items():
        path = tmp_path / f"{op}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        result = CliRunner().invoke(
            app, ["run", str(RUNNABLE), "--operation-id", op, "--input", str(path), "--db", url]
        )
        assert result.exit_code in (0, 3, 4), result.stderr


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_shows_every_run_newest_first(db: str) -> None:
    """The table lists each run with its status, newest first."""
    result = invoke("runs", "list", "--db", db, env=NARROW)

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.index("o-rev") < out.index("o-back") < out.index("o-done")
    for status in ("completed", "compensated", "needs_manual_review"):
        assert status in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_list_json_matches_the_store(db: str) -> None:
    """``--json`` lists the same runs, statuses and reasons as the store."""
    result = invoke("runs", "list", "--db", db, "--json")

    rows = json.loads(result.stdout)
    store = open_store(db)
    try:
        runs = store.list_runs()
    finally:
        store.close()
    assert [r["operation_id"] for r in rows] == [r.operation_id for r in runs]
    assert [r["status"] for r in rows] == [r.status.value for r in runs]
    assert [r["reason"] for r in rows] == [r.reason for r in runs]


def test_list_filters_by_status_and_limits(db: str) -> None:
    """``--status`` keeps only runs in that status; ``--limit`` caps the count."""
    only = json.loads(
        invoke("runs", "list", "--db", db, "--json", "--status", "compensated").stdout
    )
    assert [r["operation_id"] for r in only] == ["o-back"]
    capped = json.loads(invoke("runs", "list", "--db", db, "--json", "--limit", "2").stdout)
    assert len(capped) == 2


def test_list_of_a_status_with_no_runs_says_so(db: str) -> None:
    """An empty result is a sentence, not an empty table."""
    result = invoke("runs", "list", "--db", db, "--status", "failed")
    assert result.exit_code == 0
    assert "no runs with status failed" in result.stdout


def test_journal_url_comes_from_the_environment(db: str) -> None:
    """Without ``--db`` the journal is ``$SAGAGUARD_DB``."""
    result = invoke("runs", "list", "--json", env={"SAGAGUARD_DB": db})
    assert len(json.loads(result.stdout)) == 3


def test_show_prints_the_step_timeline_and_every_event(db: str) -> None:
    """The terminal view has each step's status, tries, external id, reason and each event."""
    result = invoke("runs", "show", "o-back", "--db", db, env=NARROW)
    view = json.loads(invoke("runs", "show", "o-back", "--db", db, "--json").stdout)

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "run o-back" in out
    assert "gave up after 3 attempts" in out
    payment_id = view["steps"][2]["external_id"]
    assert payment_id.startswith("pay_")
    assert payment_id in out
    assert "1+1u" in out  # one forward attempt and one undo attempt
    for kind in ("run_created", "step_failed", "rollback_started", "step_compensated"):
        assert kind in out
    assert "completed -> compensating" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_show_json_has_steps_and_events_as_journaled(db: str) -> None:
    """``--json`` carries the steps and every event with seq, actor, kind, from/to and reason."""
    view = json.loads(invoke("runs", "show", "o-rev", "--db", db, "--json").stdout)

    store = open_store(db)
    try:
        events = store.events("o-rev")
        snapshot = store.load("o-rev")
    finally:
        store.close()
    assert view["status"] == "needs_manual_review"
    assert [e["seq"] for e in view["events"]] == [e.seq for e in events]
    assert [e["kind"] for e in view["events"]] == [e.kind for e in events]
    assert [e["actor"] for e in view["events"]] == [e.actor for e in events]
    waiting = next(s for s in view["steps"] if s["status"] == "needs_manual_review")
    assert waiting["step_id"] == "charge_payment"
    assert waiting["reason"] == snapshot.step("charge_payment").failure_reason
    review_event = next(e for e in view["events"] if e["kind"] == "needs_manual_review")
    assert (review_event["from"], review_event["to"]) == ("unknown", "needs_manual_review")


def test_show_unknown_operation_exits_2_naming_it(db: str) -> None:
    """An operation id with no run is one line naming it and the journal."""
    assert_one_line_error(invoke("runs", "show", "nope", "--db", db), "'nope'", db)


def test_reading_a_missing_journal_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    """A mistyped ``--db`` is an error, not a fresh empty journal."""
    missing = tmp_path / "typo.sqlite3"
    for args in (["runs", "list"], ["runs", "show", "x"], ["review", "list"]):
        assert_one_line_error(invoke(*args, "--db", f"sqlite:///{missing}"), str(missing))
    assert not missing.exists()


def test_bad_status_exits_2_listing_the_choices(db: str) -> None:
    """An unknown ``--status`` is one line that lists the valid ones."""
    assert_one_line_error(
        invoke("runs", "list", "--db", db, "--status", "done"), "--status", "needs_manual_review"
    )
