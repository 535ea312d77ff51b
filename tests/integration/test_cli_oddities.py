"""A completed run that left a best-effort step behind says so in ``runs list`` and ``runs show``.

Issue 6: a best-effort step (a confirmation email) that fails for good, or whose outcome
stays unknown, never rolls the run back; the run ends ``completed``. Most journals here are
written as the engine writes such a run (the step ``failed`` or ``unknown``, a
``best_effort_failed`` event with its alert, then ``run_completed``), so that each state is
pinned; the last test has the real engine write it through ``sagaguard run``. Each is read
back through the command line, in tables and as JSON, with the step's reason escaped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.storage import NewRun, StepChange, Transition
from sagaguard.storage.base import NewAlert, RunStatus, StepStatus
from sagaguard.storage.sqlite import SQLiteStore
from sagaguard.vocabulary import EventKind

T0 = 1_750_000_000.0
STEPS = ("charge_payment", "send_confirmation_email", "send_sms")


def _completed(store: SQLiteStore, op: str, left: dict[str, tuple[StepStatus, str]]) -> None:
    created = store.create_run(
        NewRun(op, "checkout", "1", {"order": 1}, STEPS), owner="engine", now=T0, lease_s=30
    )
    assert created.claim is not None
    moves = []
    for n, step_id in enumerate(STEPS, start=1):
        if step_id not in left:
            done = StepChange(step_id, StepStatus.COMPLETED, completed_seq=n)
            moves.append(Transition(kind=EventKind.STEP_COMPLETED, step=done))
            continue
        status, reason = left[step_id]
        alert = NewAlert(f"alert-{op}-{step_id}", "best_effort_failed", {}, deliver_after=T0)
        moves.append(
            Transition(
                kind=EventKind.BEST_EFFORT_FAILED,
                step=StepChange(step_id, status, failure_reason=reason, kept=True),
                reason=reason,
                alert=alert,
                data={"route": "shop-oncall", "alert_id": alert.alert_id},
            )
        )
    moves.append(Transition(kind=EventKind.RUN_COMPLETED, run_status=RunStatus.COMPLETED))
    store.record(created.claim, moves, now=T0 + 1, lease_s=30, release=True)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    path = tmp_path / "journal.sqlite3"
    store = SQLiteStore(path=path)
    try:
        _completed(store, "o-clean", {})
        _completed(
            store,
            "o-mail",
            {"send_confirmation_email": (StepStatus.FAILED, "SMTP 550 mailbox full\x1b[2J")},
        )
        _completed(store, "o-sms", {"send_sms": (StepStatus.UNKNOWN, "no answer")})
    finally:
        store.close()
    return f"sqlite:///{path}"


def invoke(db: str, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--db", db], env={"COLUMNS": "100"})


def test_runs_list_shows_the_best_effort_step_a_completed_run_left_behind(db: str) -> None:
    listed = invoke(db, "runs", "list")

    assert listed.exit_code == 0, listed.stderr
    out = listed.stdout
    assert "best-effort send_confirmation_email failed" in out
    assert "best-effort send_sms outcome unknown" in out
    assert "\x1b" not in out
    assert "\\x1b[2J" in out  # the provider's text, escaped
    assert out.count("best-effort") == 2  # o-clean shows nothing of the kind


def test_runs_list_json_carries_each_run_s_oddities(db: str) -> None:
    rows = {
        row["operation_id"]: row for row in json.loads(invoke(db, "runs", "list", "--json").stdout)
    }

    assert rows["o-clean"]["oddities"] == []
    assert rows["o-mail"]["status"] == "completed"
    assert rows["o-mail"]["oddities"] == [
        {
            "kind": "best_effort_failed",
            "step_id": "send_confirmation_email",
            "step_status": "failed",
            "reason": "SMTP 550 mailbox full\x1b[2J",
        }
    ]
    assert [odd["kind"] for odd in rows["o-sms"]["oddities"]] == ["best_effort_unknown"]


def test_runs_show_says_it_in_the_header_and_in_the_json(db: str) -> None:
    shown = invoke(db, "runs", "show", "o-mail")
    view = json.loads(invoke(db, "runs", "show", "o-mail", "--json").stdout)

    assert shown.exit_code == 0, shown.stderr
    header = shown.stdout.split("step / status")[0]
    assert "completed" in header
    assert "best-effort send_confirmation_email failed: SMTP 550 mailbox full" in header
    assert "best_effort_failed" in shown.stdout  # the event, in the trail
    assert [odd["step_id"] for odd in view["oddities"]] == ["send_confirmation_email"]


def test_a_clean_completed_run_shows_no_oddity(db: str) -> None:
    shown = invoke(db, "runs", "show", "o-clean")

    assert shown.exit_code == 0, shown.stderr
    assert "best-effort" not in shown.stdout
    assert json.loads(invoke(db, "runs", "show", "o-clean", "--json").stdout)["oddities"] == []


SPEC = """\
process: signup
state_store: database
observability: [logs, alerts]
alerts: {default: growth-oncall}
steps:
  - id: create_account
    changes: [database]
    idempotent: yes
    handler: signup_app:create_account
    compensation: Delete the account
    compensate: signup_app:delete_account
  - id: send_welcome_email
    changes: [email]
    idempotent: no
    handler: signup_app:send_welcome_email
    compensation: none
    required: false
"""

APP = """\
from sagaguard import StepFailed


def create_account(ctx):
    return {"account_id": "acc-1"}


def delete_account(ctx):
    raise AssertionError("a best-effort failure must never roll the run back")


def send_welcome_email(ctx):
    raise StepFailed("SMTP 550: mailbox unavailable", retry=False)
"""


def test_a_run_the_engine_completes_without_its_best_effort_email_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    (tmp_path / "signup.yaml").write_text(SPEC, encoding="utf-8")
    (tmp_path / "signup_app.py").write_text(APP, encoding="utf-8")
    db = f"sqlite:///{tmp_path}/journal.sqlite3"

    ran = invoke(db, "run", str(tmp_path / "signup.yaml"), "--operation-id", "u-1")
    listed = invoke(db, "runs", "list")
    view = json.loads(invoke(db, "runs", "show", "u-1", "--json").stdout)

    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "best-effort send_welcome_email failed: " in ran.stdout
    assert "best-effort send_welcome_email failed" in listed.stdout
    assert view["status"] == "completed"
    assert [(odd["kind"], odd["step_id"]) for odd in view["oddities"]] == [
        ("best_effort_failed", "send_welcome_email")
    ]
    assert "SMTP 550" in view["oddities"][0]["reason"]
