"""Numbers at the edges: every numeric flag has a documented bound, refused outside it.

``--lease inf`` once let a killed ``run`` store an infinite lease, after which ``runs list``
failed on the whole journal. Each flag outside its bound is exit 2 and one line naming the
flag; a journal that already holds such a value (written by an older version) still lists.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import Result

from sagaguard.storage import NewRun
from sagaguard.storage.sqlite import SQLiteStore
from tests.integration.cli import assert_one_line_error, invoke

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"


def assert_flag_refused(result: Result, flag: str) -> str:
    """Exit 2, nothing on stdout, one line that names the flag."""
    assert result.stdout == ""
    return assert_one_line_error(result, f"'{flag}'")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    return f"sqlite:///{tmp_path}/journal.sqlite3"


OUT_OF_BOUNDS = ["inf", "-inf", "nan", "1e300", "1e999", "0", "-1", "86401"]


@pytest.mark.parametrize("value", OUT_OF_BOUNDS)
def test_run_refuses_a_lease_outside_its_bound_before_touching_the_journal(
    db: str, tmp_path: Path, value: str
) -> None:
    line = assert_flag_refused(
        invoke("run", str(RUNNABLE), "--operation-id", "o-1", "--lease", value, "--db", db),
        "--lease",
    )
    assert "0.1 to 86400 seconds" in line
    assert not (tmp_path / "journal.sqlite3").exists()


@pytest.mark.parametrize(
    ("flag", "value", "bound"),
    [
        ("--lease", "inf", "0.1 to 86400 seconds"),
        ("--interval", "inf", "0.01 to 86400 seconds"),
        ("--interval", "nan", "0.01 to 86400 seconds"),
        ("--interval", "0", "0.01 to 86400 seconds"),
        ("--batch", "0", "1 to 10000 runs"),
        ("--batch", str(10**20), "1 to 10000 runs"),
    ],
)
def test_worker_refuses_numbers_outside_their_bounds(
    db: str, flag: str, value: str, bound: str
) -> None:
    line = assert_flag_refused(
        invoke("worker", str(RUNNABLE), "--once", flag, value, "--db", db), flag
    )
    assert bound in line


@pytest.mark.parametrize("command", [["runs", "list"], ["review", "list"]])
@pytest.mark.parametrize("value", ["0", "-5", str(10**20), "9" * 5000])
def test_listings_refuse_a_limit_outside_its_bound(db: str, command: list[str], value: str) -> None:
    line = assert_flag_refused(invoke(*command, "--limit", value, "--db", db), "--limit")
    assert len(line) < 300
    if len(value) < 100:  # typer itself refuses a number of thousands of digits
        assert "1 to 1000000 runs" in line


def test_numbers_at_their_bounds_are_accepted(db: str, tmp_path: Path) -> None:
    order = tmp_path / "order.json"
    order.write_text(json.dumps({"order": {"total_cents": 100}}), encoding="utf-8")
    ran = invoke(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(order),
        "--lease", "86400", "--db", db,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    listed = invoke("runs", "list", "--limit", "1000000", "--json", "--db", db)
    assert listed.exit_code == 0, listed.stderr
    assert [row["operation_id"] for row in json.loads(listed.stdout)] == ["o-1"]
    worked = invoke(
        "worker", str(RUNNABLE), "--once", "--batch", "10000", "--interval", "0.01",
        "--lease", "0.1", "--db", db,
    )  # fmt: skip
    assert worked.exit_code == 0, worked.stderr


@pytest.mark.parametrize("stored", ["9e999", "-9e999", "1e300", "-1e300"])
def test_a_journal_holding_an_absurd_lease_still_lists_and_shows(db: str, stored: str) -> None:
    """An older version stored ``--lease inf`` as an infinite expiry; reading must survive it."""
    path = db.removeprefix("sqlite:///")
    store = SQLiteStore(path=path)
    try:
        store.create_run(
            NewRun("o-inf", "checkout", "1", {"n": 1}, ("reserve",)),
            owner="old-version",
            now=1_700_000_000.0,
            lease_s=60.0,
        )
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE runs SET lease_expires_at = {stored}")

    listed = invoke("runs", "list", "--json", "--db", db)
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["operation_id"] == "o-inf"
    assert isinstance(row["lease_expires_at"], str)
    for args in (["runs", "list"], ["runs", "show", "o-inf"], ["runs", "show", "o-inf", "--json"]):
        shown = invoke(*args, "--db", db)
        assert shown.exit_code == 0, (args, shown.stderr)
        assert "o-inf" in shown.stdout


# --- the spec's numbers: bounded in the model, refused by every command that reads a spec ---

SPEC_HEAD = "process: shop\nstate_store: database\nobservability: [logs]\n"


def _spec_with(step_extra: str = "", head_extra: str = "", steps: int = 1) -> str:
    body = "".join(
        f"  - id: s{n}\n    changes: [database]\n    idempotent: yes\n{step_extra}"
        for n in range(steps)
    )
    return SPEC_HEAD + head_extra + "steps:\n" + body


SPEC_NUMBERS = [
    ("timeout_inf", _spec_with("    timeout: .inf\n"), "steps[0].timeout"),
    ("timeout_minus_inf", _spec_with("    timeout: -.inf\n"), "steps[0].timeout"),
    ("timeout_nan", _spec_with("    timeout: .nan\n"), "steps[0].timeout"),
    ("timeout_absurd", _spec_with("    timeout: 99999999999999999999h\n"), "steps[0].timeout"),
    ("attempts_huge", _spec_with("    max_attempts: 1000000000000\n"), "steps[0].max_attempts"),
    ("attempts_bool", _spec_with("    max_attempts: true\n"), "steps[0].max_attempts"),
    ("attempts_text", _spec_with('    max_attempts: "3"\n'), "steps[0].max_attempts"),
    (
        "backoff_inverted",
        _spec_with(head_extra="defaults: {backoff_base: 2s, backoff_max: 1s}\n"),
        "backoff_base",
    ),
    ("too_many_steps", _spec_with(steps=1001), "steps"),
]


@pytest.mark.parametrize("command", ["check", "plan"])
@pytest.mark.parametrize(
    ("text", "field"), [(t, f) for _, t, f in SPEC_NUMBERS], ids=[n for n, _, _ in SPEC_NUMBERS]
)
def test_a_spec_number_out_of_bounds_is_one_line_naming_the_field(
    tmp_path: Path, command: str, text: str, field: str
) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(text, encoding="utf-8")
    line = assert_one_line_error(invoke(command, str(spec)), str(spec), field)
    assert len(line) < 300


def test_a_json_spec_number_beyond_a_float_names_the_file(tmp_path: Path) -> None:
    spec = tmp_path / "shop.json"
    spec.write_text(
        json.dumps({"process": "shop", "state_store": "database", "observability": ["logs"]})[:-1]
        + ', "steps": [{"id": "a", "changes": ["database"], "idempotent": "yes",'
        ' "timeout": 1e999}]}',
        encoding="utf-8",
    )
    assert_one_line_error(invoke("plan", str(spec), "--format", "json"), str(spec), "1e999")


def test_run_refuses_an_unbounded_spec_before_journaling(db: str, tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(_spec_with("    timeout: .inf\n"), encoding="utf-8")
    result = invoke("run", str(spec), "--operation-id", "o-1", "--db", db)
    assert_one_line_error(result, "steps[0].timeout")
    assert not (tmp_path / "journal.sqlite3").exists()


def test_a_plan_at_the_bounds_is_json_without_infinity(tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(_spec_with("    timeout: 2160h\n    max_attempts: 1000\n"), encoding="utf-8")
    result = invoke("plan", str(spec), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "Infinity" not in result.stdout
    assert "NaN" not in result.stdout
    json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the plan"))
