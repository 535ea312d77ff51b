"""The planning commands end to end: ``plan`` in three formats and to a file, ``check``'s exit
codes and findings, ``init``'s starter spec, and a coded saga planned like a spec file."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sagaguard import load_spec, parse_spec
from sagaguard.cli import app
from sagaguard.cli.planning import PlanFormat
from sagaguard.model import Defaults, Step
from sagaguard.starter import starter_spec

REPO = Path(__file__).resolve().parents[2]

# Payment with a verify and an unknown idempotency, a best-effort receipt: warnings and
# notes, but no error.
SHOP_SPEC = textwrap.dedent(
    """\
    process: shop
    state_store: key_value
    observability: [logs]
    alerts: {default: shop-oncall, payment: finance}
    steps:
      - id: reserve_stock
        changes: [reservation]
        idempotent: yes
        compensation: Release the reservation
        external_id: reservation_id
      - id: take_payment
        changes: [payment]
        idempotent: unknown
        verify: Look the charge up by the idempotency key
        compensation: Refund the charge
        external_id: payment_id
      - id: send_receipt
        changes: [email]
        idempotent: no
        compensation: none
        required: false
        mitigation: Never send a second receipt
    """
)
SHOP_STEPS = ["reserve_stock", "take_payment", "send_receipt"]


def _without_verify(spec: str) -> str:
    """The same shop, but the payment can neither be repeated safely nor looked up: an error."""
    data = yaml.safe_load(spec)
    del data["steps"][1]["verify"]
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    spec = tmp_path / "shop.yaml"
    spec.write_text(SHOP_SPEC, encoding="utf-8")
    return spec


def _ok(result: object) -> None:
    exit_code = getattr(result, "exit_code", None)
    assert exit_code == 0, (exit_code, getattr(result, "stderr", ""))


# --- plan ---------------------------------------------------------------------------------


def test_plan_prints_markdown_to_stdout_by_default(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["plan", str(shop)])
    _ok(result)
    assert result.stderr == ""
    assert result.stdout.lstrip().startswith("#")
    assert "```mermaid" in result.stdout
    for step in SHOP_STEPS:
        assert step in result.stdout


def test_plan_prints_json_that_follows_the_spec(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["plan", str(shop), "--format", "json"])
    _ok(result)
    document = json.loads(result.stdout)
    assert document["format"] == "sagaguard.plan/v2"
    assert document["process"]["name"] == "shop"
    assert [step["id"] for step in document["steps"]] == SHOP_STEPS
    for part in ("rollback_sequences", "decision_matrix", "tests", "checklist", "findings"):
        assert part in document


def test_plan_prints_a_self_contained_html_page(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["plan", str(shop), "-f", "html"])
    _ok(result)
    page = result.stdout
    assert page.lstrip().lower().startswith("<!doctype html")
    assert page.rstrip().endswith("</html>")
    assert "<svg" in page
    assert "<link " not in page
    assert "<script src" not in page
    for step in SHOP_STEPS:
        assert step in page


def test_plan_formats_are_the_renderers_formats() -> None:
    from sagaguard.planner.render import Format

    assert {f.value for f in PlanFormat} == {f.value for f in Format}


def test_plan_output_file_holds_exactly_what_stdout_would(
    runner: CliRunner, shop: Path, tmp_path: Path
) -> None:
    printed = runner.invoke(app, ["plan", str(shop), "--format", "json"])
    target = tmp_path / "out" / "plan.txt"
    target.parent.mkdir()
    written = runner.invoke(app, ["plan", str(shop), "--format", "json", "-o", str(target)])
    _ok(written)
    assert written.stdout == ""
    assert str(target) in written.stderr
    assert target.read_text(encoding="utf-8") == printed.stdout
    assert sorted(p.name for p in target.parent.iterdir()) == ["plan.txt"], "temp file left"


def test_plan_output_dash_means_stdout(runner: CliRunner, shop: Path) -> None:
    printed = runner.invoke(app, ["plan", str(shop)])
    dashed = runner.invoke(app, ["plan", str(shop), "-o", "-"])
    _ok(dashed)
    assert dashed.stdout == printed.stdout
    assert dashed.stderr == ""
    assert not Path("-").exists()


@pytest.mark.parametrize(
    ("name", "marker"),
    [("plan.json", '"format": "sagaguard.plan/v2"'), ("plan.html", "<svg"), ("plan.md", "# ")],
)
def test_plan_output_format_follows_the_file_suffix(
    runner: CliRunner, shop: Path, tmp_path: Path, name: str, marker: str
) -> None:
    target = tmp_path / name
    _ok(runner.invoke(app, ["plan", str(shop), "-o", str(target)]))
    assert marker in target.read_text(encoding="utf-8")


def test_explicit_format_wins_over_the_file_suffix(
    runner: CliRunner, shop: Path, tmp_path: Path
) -> None:
    target = tmp_path / "plan.html"
    _ok(runner.invoke(app, ["plan", str(shop), "--format", "json", "-o", str(target)]))
    assert json.loads(target.read_text(encoding="utf-8"))["process"]["name"] == "shop"


def test_plan_output_replaces_an_existing_file_and_keeps_its_mode(
    runner: CliRunner, shop: Path, tmp_path: Path
) -> None:
    target = tmp_path / "plan.md"
    target.write_text("old plan\n", encoding="utf-8")
    target.chmod(0o640)
    _ok(runner.invoke(app, ["plan", str(shop), "-o", str(target)]))
    assert "old plan" not in target.read_text(encoding="utf-8")
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_the_old_plan_whole_and_no_temp_file(
    runner: CliRunner, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plan.md"
    target.write_text("old plan\n", encoding="utf-8")

    def disk_gone(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", disk_gone)
    result = runner.invoke(app, ["plan", str(shop), "-o", str(target)])
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"sagaguard: error: {target}: cannot write (Input/output error)"
    ]
    assert target.read_text(encoding="utf-8") == "old plan\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("where", ["missing_dir", "directory"])
def test_plan_output_to_an_impossible_place_is_one_line(
    runner: CliRunner, shop: Path, tmp_path: Path, where: str
) -> None:
    target = tmp_path / "nowhere" / "plan.md" if where == "missing_dir" else tmp_path
    result = runner.invoke(app, ["plan", str(shop), "-o", str(target)])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert str(target) in result.stderr
    assert "Traceback" not in result.stderr


# --- check --------------------------------------------------------------------------------


def test_check_exits_0_and_lists_findings_when_none_is_an_error(
    runner: CliRunner, shop: Path
) -> None:
    result = runner.invoke(app, ["check", str(shop)])
    _ok(result)
    lines = result.stdout.splitlines()
    # A verify only described (not bound to code) is a warning, never an error.
    assert any(line.split()[:3] == ["warning", "take_payment", "SG016"] for line in lines), lines
    assert not any(line.startswith("error") for line in lines)
    summary = lines[-1]
    assert summary.startswith(f"{shop}: ok: process 'shop', 3 steps: 0 errors")


def test_check_exits_1_when_a_finding_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "unsafe.yaml"
    spec.write_text(_without_verify(SHOP_SPEC), encoding="utf-8")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1
    severity, step, code, *_ = errors[0].split()
    assert (severity, step) == ("error", "take_payment")
    assert code.startswith("SG")
    assert lines[-1].startswith(f"{spec}: FAILED: process 'shop', 3 steps: 1 error,")
    assert result.stderr == ""


def test_check_lists_errors_before_warnings_and_notes(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "unsafe.yaml"
    spec.write_text(_without_verify(SHOP_SPEC), encoding="utf-8")
    lines = runner.invoke(app, ["check", str(spec)]).stdout.splitlines()[:-1]
    rank = {"error": 0, "warning": 1, "info": 2}
    severities = [rank[line.split()[0]] for line in lines]
    assert severities == sorted(severities)
    assert len(lines) > 1


# --- init ---------------------------------------------------------------------------------


def test_init_writes_a_loadable_commented_starter(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "checkout.yaml"
    result = runner.invoke(app, ["init", str(target)])
    _ok(result)
    assert str(target) in result.stdout
    process = load_spec(target)
    assert process.name == "checkout"
    changes = {kind.value for step in process.steps for kind in step.changes}
    assert {"database", "reservation", "payment", "email"} <= changes
    text = target.read_text(encoding="utf-8")
    lines = text.splitlines()
    comments = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    # Every top-level key has a comment right above it.
    for index, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line):
            above = [prior for prior in lines[:index] if prior.strip()][-1]
            assert above.startswith("#"), f"{line!r} has no comment above it"
    # Every field a step can have is explained, and every default has its own comment.
    for field in Step.model_fields:
        assert re.search(rf"#\s+{field}\b", comments), f"step field {field} is not explained"
    for field in Defaults.model_fields:
        line = next(line for line in lines if line.strip().startswith(f"{field}:"))
        assert "#" in line, f"default {field} is not explained"
    assert f"check {target}" in text


def test_init_defaults_to_saga_yaml_in_the_current_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _ok(runner.invoke(app, ["init"]))
    assert load_spec(tmp_path / "saga.yaml").name == "checkout"


def test_init_dash_writes_the_starter_to_stdout_and_no_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init -` means stdout, as `plan -o -` does; no file named `-` appears."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "-"])
    _ok(result)
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == starter_spec()
    assert parse_spec(result.stdout).name == "checkout"


def test_init_refuses_to_overwrite_an_existing_file(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "saga.yaml"
    target.write_text("my own spec\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"sagaguard: error: {target}: already exists; pass --force to overwrite it"
    ]
    assert target.read_text(encoding="utf-8") == "my own spec\n"


def test_init_force_overwrites(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "saga.yaml"
    target.write_text("my own spec\n", encoding="utf-8")
    _ok(runner.invoke(app, ["init", str(target), "--force"]))
    assert load_spec(target).name == "checkout"


def test_the_starter_spec_passes_check(runner: CliRunner, tmp_path: Path) -> None:
    """A new user's first `check` must not fail on the file `init` just wrote."""
    target = tmp_path / "saga.yaml"
    _ok(runner.invoke(app, ["init", str(target)]))
    result = runner.invoke(app, ["check", str(target)])
    assert result.exit_code == 0, result.stdout


# --- coded sagas: module:attribute ---------------------------------------------------------

_modules = itertools.count()


@pytest.fixture
def coded_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module in the working directory that builds the shop process in code."""
    name = f"coded_shop_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            f"""\
            from sagaguard import parse_spec

            class ShopSaga:
                process = parse_spec({SHOP_SPEC!r}, source="coded")

            saga = ShopSaga()
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("fmt", [f.value for f in PlanFormat])
def test_plan_of_a_coded_saga_equals_the_plan_of_its_spec(
    runner: CliRunner, shop: Path, coded_shop: str, fmt: str
) -> None:
    from_code = runner.invoke(app, ["plan", f"{coded_shop}:saga", "--format", fmt])
    from_spec = runner.invoke(app, ["plan", str(shop), "--format", fmt])
    _ok(from_code)
    assert from_code.stdout == from_spec.stdout


def test_plan_of_a_coded_saga_knows_which_steps_have_verify_code(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coded saga's verify text is a docstring: only `@step.verify` says the engine can ask."""
    name = f"coded_pay_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """\
            from sagaguard.engine import Applied, Saga

            saga = Saga("pay", alerts={"default": "ops"})

            @saga.step(changes=["payment"], idempotent="unknown", compensation="Refund")
            def charge(ctx):
                \"\"\"Charge the card\"\"\"
                return {}

            @charge.verify
            def find_charge(ctx):
                \"\"\"Look the charge up by its key\"\"\"
                return Applied({})

            @saga.step(changes=["external_api"], idempotent="no", verify="Ask the carrier")
            def ship(ctx):
                \"\"\"Book the shipment\"\"\"
                return {}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["plan", f"{name}:saga", "--format", "json"])
        _ok(result)
    finally:
        sys.modules.pop(name, None)
    steps = {s["id"]: s for s in json.loads(result.stdout)["steps"]}
    assert (steps["charge"]["kind"], steps["charge"]["verify_bound"]) == ("verifiable", True)
    assert (steps["ship"]["kind"], steps["ship"]["verify_bound"]) == ("verify_unbound", False)


def test_check_accepts_a_coded_saga(runner: CliRunner, coded_shop: str) -> None:
    result = runner.invoke(app, ["check", f"{coded_shop}:saga"])
    _ok(result)
    assert result.stdout.splitlines()[-1].startswith(f"{coded_shop}:saga: ok: process 'shop'")


def test_a_coded_target_of_the_wrong_type_is_one_line(runner: CliRunner, coded_shop: str) -> None:
    result = runner.invoke(app, ["plan", f"{coded_shop}:ShopSaga.__name__"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"sagaguard: error: {coded_shop}:ShopSaga.__name__: is of type 'str', "
        "not a sagaguard Process or a saga with a `.process`"
    ]


CODED_SAGA = """\
from sagaguard.engine import Saga

saga = Saga("signup", observability=["logs", "alerts"], alerts={"default": "growth"})


@saga.step(changes=["database"], idempotent="yes", external_id="user_id")
def create_user(ctx):
    '''Insert the user row'''


@create_user.compensate
def delete_user(ctx):
    '''Delete the user row by user_id'''


@saga.step(changes=["email"], idempotent="no", compensation="none")
def send_welcome(ctx):
    '''Send the welcome email'''


empty = Saga("nothing")
"""


@pytest.fixture
def coded_signup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module in the working directory that defines a saga with the decorator API."""
    name = f"coded_signup_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(CODED_SAGA, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    yield name
    sys.modules.pop(name, None)


def test_plan_of_a_decorated_saga_uses_its_steps_and_docstrings(
    runner: CliRunner, coded_signup: str
) -> None:
    result = runner.invoke(app, ["plan", f"{coded_signup}:saga", "--format", "json"])
    _ok(result)
    document = json.loads(result.stdout)
    assert document["process"]["name"] == "signup"
    assert [step["id"] for step in document["steps"]] == ["create_user", "send_welcome"]
    create_user = document["steps"][0]
    assert create_user["action"] == "Insert the user row"
    assert create_user["compensation"] == "Delete the user row by user_id"
    assert create_user["class"] == "compensatable"
    assert document["steps"][1]["class"] == "irreversible"


def test_a_saga_without_steps_is_one_line_naming_the_target(
    runner: CliRunner, coded_signup: str
) -> None:
    result = runner.invoke(app, ["check", f"{coded_signup}:empty"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"sagaguard: error: {coded_signup}:empty: ")
    assert "no steps" in lines[0]


# --- the real entry point ------------------------------------------------------------------


@pytest.mark.slow
def test_python_dash_m_plans_the_guide_checkout_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sagaguard", "plan", "examples/checkout.yaml", "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    expected = [step.id for step in load_spec(REPO / "examples" / "checkout.yaml").steps]
    assert [step["id"] for step in document["steps"]] == expected


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_plan_quietly(shop: Path) -> None:
    """`sagaguard plan x | head -1`: a closed pipe is not a crash and prints no traceback."""
    child = subprocess.Popen(
        [sys.executable, "-m", "sagaguard", "plan", str(shop), "--format", "html"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert child.wait(timeout=60) == 1
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr


# --- the coded example: examples/signup_saga.py -------------------------------------------


@pytest.fixture
def in_examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in examples/ as its docstring says, importing the example fresh each time."""
    examples = REPO / "examples"
    monkeypatch.chdir(examples)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    sys.modules.pop("signup_saga", None)
    yield examples
    sys.modules.pop("signup_saga", None)


def test_the_coded_signup_example_plans_through_the_cli(
    runner: CliRunner, in_examples: Path
) -> None:
    """Decorated functions become the steps; docstrings their actions, undos and checks."""
    result = runner.invoke(app, ["plan", "signup_saga:saga", "--format", "json"])
    _ok(result)
    document = json.loads(result.stdout)
    assert document["process"]["name"] == "signup"
    steps = {s["id"]: s for s in document["steps"]}
    assert list(steps) == [
        "check_email_available",
        "create_account",
        "create_crm_contact",
        "publish_user_created",
        "send_welcome_email",
    ]
    assert steps["check_email_available"]["class"] == "read_only"
    assert steps["create_account"]["compensation"] == (
        "Soft-delete the account (status signup_rolled_back) by user_id"
    )
    assert steps["create_crm_contact"]["verify"] == "Search CRM contacts by external_ref = user_id"
    assert steps["create_crm_contact"]["timeout_s"] == 8.0
    assert steps["send_welcome_email"]["class"] == "irreversible"
    # The email is last: no pivot problem, and no error for `check` to fail on.
    assert not [f for f in document["findings"] if f["code"] in ("SG001", "SG003")]
    checked = runner.invoke(app, ["check", "signup_saga:saga"])
    _ok(checked)
    assert checked.stdout.splitlines()[-1].startswith("signup_saga:saga: ok: process 'signup'")


def test_the_coded_signup_example_runs_and_rolls_back(
    in_examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's code works: a run completes, and a refused email undoes the rest."""
    from sagaguard.engine import Engine

    monkeypatch.syspath_prepend(str(in_examples))
    signup = importlib.import_module("signup_saga")
    with Engine(store="memory://", sleep=lambda _: None) as engine:
        done = engine.run(signup.saga, operation_id="s-1", input={"email": "ada@example.com"})
        taken = engine.run(signup.saga, operation_id="s-2", input={"email": "ada@example.com"})
        bounced = engine.run(
            signup.saga, operation_id="s-3", input={"email": "bounced@example.com"}
        )
    assert done.run.status.value == "completed"
    # The address is taken now: the read-only check refuses and there is nothing to undo.
    assert taken.run.status.value == "failed"
    assert bounced.run.status.value == "compensated"
    assert [s.status.value for s in bounced.steps] == [
        "completed",
        "compensated",
        "compensated",
        "compensated",
        "failed",
    ]
