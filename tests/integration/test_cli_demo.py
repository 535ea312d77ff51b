"""``sagaguard demo``: the guide's incident, played and checked on a real SQLite journal.

The demo must show, in order, the charge whose answer is lost being verified (one charge,
no second call), and the failed delivery rolled back (one charge, one refund, one
reservation, one release), stay readable in 80 columns, and leave the journal behind only
when asked to.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.storage import open_store

NARROW = {"COLUMNS": "80"}


def demo(*args: str) -> Result:
    return CliRunner().invoke(app, ["demo", *args], env=NARROW)


def scenarios(output: str) -> tuple[str, str]:
    """The output of scenario 1 and of scenario 2."""
    first = output.index("Scenario 1")
    second = output.index("Scenario 2")
    return output[first:second], output[second:]


def effect_lines(text: str, system: str, action: str) -> list[str]:
    """The provider lines printed as each effect happened."""
    return [line for line in text.splitlines() if f"provider: {system} {action} " in line]


def test_demo_exits_0_and_every_claim_holds() -> None:
    """Both scenarios run and every claim they make is checked and holds."""
    result = demo()

    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("[ok]") == 9
    assert "[FAILED]" not in result.stdout
    assert result.stderr == ""


def test_lost_answer_is_verified_and_charged_once() -> None:
    """Scenario 1 shows the timeout, the verify, the completion, and exactly one charge."""
    first, _ = scenarios(demo().stdout)

    assert len(effect_lines(first, "psp", "charge")) == 1
    assert effect_lines(first, "psp", "refund") == []
    order = [
        first.index("outcome_unknown  charge_payment"),
        first.index("verify_called  charge_payment"),
        first.index("verified_applied  charge_payment"),
        first.index("run_completed"),
    ]
    assert order == sorted(order)
    # The write-ahead order: `started` is printed before the provider charged.
    assert first.index("step_started  charge_payment") < first.index("provider: psp charge")
    assert "run order-1001: completed" in first


def test_failed_delivery_refunds_and_releases_in_reverse_order() -> None:
    """Scenario 2 shows three refused bookings, then refund, release and cancel in that order."""
    _, second = scenarios(demo().stdout)

    assert len(effect_lines(second, "psp", "charge")) == 1
    assert len(effect_lines(second, "psp", "refund")) == 1
    assert len(effect_lines(second, "inventory", "reserve")) == 1
    assert len(effect_lines(second, "inventory", "release")) == 1
    assert second.count("step_failed  book_delivery") == 3
    undo = [
        second.index("provider: psp refund"),
        second.index("provider: inventory release"),
        second.index("provider: orders cancel"),
    ]
    assert undo == sorted(undo)
    assert "run order-1002: compensated" in second


def test_demo_fits_80_columns_when_piped() -> None:
    """Piped output is plain text no wider than 80 columns (no colour codes)."""
    output = demo().stdout
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "\x1b[" not in output


def test_demo_prints_every_journal_event_with_its_narration(tmp_path: Path) -> None:
    """Each event the journal holds is printed once, in order, followed by a plain line."""
    path = tmp_path / "demo.sqlite3"
    output = demo("--db", str(path)).stdout
    store = open_store(f"sqlite:///{path}")
    try:
        journaled = [
            (e.seq, e.kind) for op in ("order-1001", "order-1002") for e in store.events(op)
        ]
    finally:
        store.close()

    printed = [
        (int(match.group(1)), match.group(2))
        for match in re.finditer(r"^ {0,3}(\d+) ([a-z_]+)", output, flags=re.MULTILINE)
    ]
    assert printed == journaled
    flat = " ".join(output.split())
    assert "is committed as started, then the call is made" in flat
    assert "completed without calling it again" in flat
    assert "undone, latest first" in flat


def test_temporary_journal_is_removed_unless_kept() -> None:
    """Without --keep the temporary journal is gone; with --keep it stays, ready to inspect."""
    removed = re.search(r"journal: (\S+)", demo().stdout)
    assert removed is not None
    assert not Path(removed.group(1)).exists()

    kept = demo("--keep")
    path = re.search(r"journal: (\S+)", kept.stdout)
    assert path is not None
    journal = Path(path.group(1))
    try:
        assert journal.exists()
        assert "runs show order-1001" in " ".join(kept.stdout.split())
    finally:
        for leftover in journal.parent.glob("demo.sqlite3*"):
            leftover.unlink()
        journal.parent.rmdir()


def test_demo_on_a_given_file_can_be_inspected_and_replayed(tmp_path: Path) -> None:
    """``--db PATH`` keeps the runs; a second demo there uses fresh operation ids."""
    path = tmp_path / "demo.sqlite3"
    assert demo("--db", str(path)).exit_code == 0
    again = demo("--db", str(path))

    assert again.exit_code == 0, again.stderr
    assert "run order-1001-2: completed" in again.stdout
    shown = CliRunner().invoke(
        app, ["runs", "show", "order-1002", "--db", f"sqlite:///{path}", "--json"]
    )
    view = json.loads(shown.stdout)
    assert view["status"] == "compensated"
    assert [s["status"] for s in view["steps"][:3]] == ["compensated"] * 3


def test_demo_takes_a_sqlite_url_as_its_journal(tmp_path: Path) -> None:
    """--db accepts the URL every other command takes, naming the same file."""
    path = tmp_path / "demo.sqlite3"
    assert demo("--db", f"sqlite:///{path}").exit_code == 0
    assert path.exists()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("bogus://x", "plays on SQLite"),
        ("postgresql://h/db", "plays on SQLite"),
        (".", "directory"),
    ],
    ids=["unknown_scheme", "not_sqlite", "directory"],
)
def test_demo_refuses_a_journal_it_cannot_play_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = demo("--db", value)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert fragment in result.stderr
    assert list(tmp_path.iterdir()) == [], "no file was made"


def test_demo_in_a_missing_directory_exits_2(tmp_path: Path) -> None:
    """A --db path whose folder does not exist is one line naming it."""
    result = demo("--db", str(tmp_path / "no" / "demo.sqlite3"))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert str(tmp_path / "no") in result.stderr


@pytest.mark.slow
def test_demo_as_a_real_process_exits_0_and_rolls_back() -> None:
    """``python -m sagaguard demo`` plays both scenarios (its speed is in bench/startup.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "sagaguard", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "run order-1002: compensated" in done.stdout
