"""Bad input to the command line: exit code 2, exactly one line on stderr, never a traceback.

Each kind of bad spec gets its own case, run through both commands that read a spec
(``plan`` and ``check``). The line must let a person fix the spec without opening it in
a debugger: it names the file, the field path (``steps[2].idempotent``) and the value.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from sagaguard.cli import app, main

SPEC_COMMANDS = ("plan", "check")

VALID: dict[str, Any] = {
    "process": "checkout",
    "state_store": "database",
    "observability": ["logs"],
    "steps": [
        {"id": "create_order", "changes": ["database"], "idempotent": "yes"},
        {"id": "charge_payment", "changes": ["payment"], "idempotent": "unknown"},
        {"id": "send_email", "changes": ["email"], "idempotent": "no"},
    ],
}


def _spec(mutate: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(VALID)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


@dataclass(frozen=True)
class BadSpec:
    """A spec file content and the fragments its one error line must contain."""

    name: str
    content: str | bytes
    expected: tuple[str, ...]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key)


BAD_SPECS = [
    BadSpec(
        "invalid_yaml",
        # A tab cannot start a YAML token: the error is at line 3, column 1.
        "process: checkout\nstate_store: database\n\tobservability: [logs]\n",
        ("line 3, column 1", "invalid YAML"),
    ),
    BadSpec("empty_file", "", ("empty",)),
    BadSpec("whitespace_only_file", "\n  \n# only a comment\n", ("empty",)),
    BadSpec("wrong_top_level_type", "- create_order\n- charge_payment\n", ("mapping", "list")),
    BadSpec("scalar_top_level", "checkout\n", ("mapping", "string")),
    BadSpec(
        "unknown_step_key",
        _spec(_set(("steps", 1, "retries"), 3)),
        ("steps[1].retries", "unknown key 'retries'"),
    ),
    BadSpec(
        "misspelt_step_key",
        _spec(_set(("steps", 2, "verfy"), "Look the email up")),
        ("steps[2].verfy", "'verfy'", "did you mean 'verify'"),
    ),
    BadSpec(
        "unknown_top_level_key",
        _spec(_set(("owner",), "shop-team")),
        ("owner", "unknown key 'owner'"),
    ),
    BadSpec(
        "duplicate_step_id",
        _spec(_set(("steps", 2, "id"), "create_order")),
        ("steps[2].id", "'create_order'", "steps[0]"),
    ),
    BadSpec(
        "unknown_change_kind",
        _spec(_set(("steps", 1, "changes"), ["payment", "fax"])),
        ("steps[1].changes[1]", "'fax'"),
    ),
    BadSpec(
        "bad_idempotency_value",
        _spec(_set(("steps", 2, "idempotent"), "maybe")),
        ("steps[2].idempotent", "'maybe'", "'unknown'"),
    ),
    BadSpec(
        "bad_state_store_value",
        _spec(_set(("state_store",), "redis")),
        ("state_store", "'redis'", "key_value"),
    ),
    BadSpec(
        "bad_step_id",
        _spec(_set(("steps", 0, "id"), "Create-Order")),
        ("steps[0].id", "'Create-Order'"),
    ),
    BadSpec(
        "bad_timeout",
        _spec(_set(("steps", 1, "timeout"), "soon")),
        ("steps[1].timeout", "'soon'"),
    ),
    BadSpec("empty_step_list", _spec(_set(("steps",), [])), ("steps", "must not be empty")),
    BadSpec("missing_steps", _spec(_drop("steps")), ("steps", "missing")),
    BadSpec("missing_process_name", _spec(_drop("process")), ("process", "missing")),
    BadSpec("not_utf8", b"process: checkout\xff\n", ("UTF-8",)),
    BadSpec(
        "step_not_a_mapping",
        _spec(_set(("steps", 1), "notastep")),
        ("steps[1]: 'notastep': must be a mapping (a step)",),
    ),
]


def _assert_one_line_error(result: Any, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one `sagaguard: error:` line holding every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("sagaguard: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.stdout == ""
    return line


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("command", SPEC_COMMANDS)
@pytest.mark.parametrize("bad", BAD_SPECS, ids=[b.name for b in BAD_SPECS])
def test_bad_spec_exits_2_with_one_line_naming_file_field_and_value(
    runner: CliRunner, tmp_path: Path, command: str, bad: BadSpec
) -> None:
    spec = tmp_path / f"{bad.name}.yaml"
    if isinstance(bad.content, bytes):
        spec.write_bytes(bad.content)
    else:
        spec.write_text(bad.content, encoding="utf-8")
    result = runner.invoke(app, [command, str(spec)])
    _assert_one_line_error(result, str(spec), *bad.expected)


@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_invalid_json_spec_is_one_line_with_line_and_column(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    """A .json spec is read as JSON: a trailing comma is an error, not lenient YAML."""
    spec = tmp_path / "broken.json"
    spec.write_text('{"process": "checkout",\n "steps": [1,]}\n', encoding="utf-8")
    result = runner.invoke(app, [command, str(spec)])
    line = _assert_one_line_error(result, str(spec))
    assert line == f"sagaguard: error: {spec}: line 2, column 14: invalid JSON: Expecting value"


@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_missing_file_names_the_file(runner: CliRunner, tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no-such-spec.yaml"
    result = runner.invoke(app, [command, str(missing)])
    _assert_one_line_error(result, str(missing), "no such file")


@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_directory_instead_of_file_is_unreadable(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    result = runner.invoke(app, [command, str(tmp_path)])
    _assert_one_line_error(result, str(tmp_path), "directory")


def test_file_without_read_permission_is_unreadable(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spec nobody may read: one line naming the file, from the real command and loader."""
    spec = tmp_path / "locked.yaml"
    spec.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    spec.chmod(0)
    if os.access(spec, os.R_OK):
        # Root reads a chmod 000 file (CI runs as root): make the read fail as the OS would
        # for anyone else, so the error path under test is still the loader's own.
        real_open = os.open

        def denied(path: Any, *args: Any, **kwargs: Any) -> int:
            if Path(path) == spec:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    try:
        result = runner.invoke(app, ["check", str(spec)])
    finally:
        spec.chmod(0o644)
    line = _assert_one_line_error(result, str(spec), "cannot be read")
    assert line.endswith("cannot be read (Permission denied)")


def test_unknown_module_target_names_the_target(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "no_such_sagaguard_module:saga"])
    _assert_one_line_error(result, "no_such_sagaguard_module:saga", "no module named")


# --- usage errors: typer's own, kept to one line -------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["plan"], ("Missing argument 'SPEC'", "sagaguard plan --help")),
        (["plan", "--bogus", "x.yaml"], ("No such option: --bogus",)),
        (["plan", "--format", "pdf", "x.yaml"], ("--format", "'pdf'", "markdown")),
        (["plna", "x.yaml"], ("No such command 'plna'", "'plan'")),
        (["check", "a.yaml", "b.yaml"], ("unexpected extra argument", "b.yaml")),
    ],
    ids=["missing_argument", "unknown_option", "bad_choice", "unknown_command", "extra_argument"],
)
def test_usage_error_is_one_line_with_exit_2(
    runner: CliRunner, args: list[str], fragments: tuple[str, ...]
) -> None:
    result = runner.invoke(app, args)
    _assert_one_line_error(result, *fragments)


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.stdout + result.stderr
    assert "plan" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- main(): failures outside the expected ones --------------------------------------------


def _run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    assert isinstance(code, int)
    return code


def test_main_reports_a_spec_error_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(_spec(_set(("steps", 2, "idempotent"), "maybe")), encoding="utf-8")
    assert _run_main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"sagaguard: error: {spec}: steps[2].idempotent: 'maybe'")


def test_main_turns_an_unexpected_exception_into_one_internal_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(target: str) -> Any:
        raise RuntimeError("planner exploded")

    monkeypatch.delenv("SAGAGUARD_DEBUG", raising=False)
    monkeypatch.setattr("sagaguard.cli.planning.load_process", broken)
    assert _run_main(["check", "spec.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("sagaguard: internal error: RuntimeError: planner exploded")
    assert "SAGAGUARD_DEBUG" in err
    assert "Traceback" not in err


def test_main_reraises_an_unexpected_exception_when_debugging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(target: str) -> Any:
        raise RuntimeError("planner exploded")

    monkeypatch.setenv("SAGAGUARD_DEBUG", "1")
    monkeypatch.setattr("sagaguard.cli.planning.load_process", broken)
    with pytest.raises(RuntimeError, match="planner exploded"):
        main(["check", "spec.yaml"])


def test_main_exits_130_on_keyboard_interrupt_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(target: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("sagaguard.cli.planning.load_process", interrupted)
    assert _run_main(["plan", "spec.yaml"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_cli_runner_sees_the_same_exit_code_as_main_for_interrupts(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(target: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("sagaguard.cli.planning.load_process", interrupted)
    result = runner.invoke(app, ["plan", "spec.yaml"])
    assert result.exit_code == 130
    assert "Traceback" not in result.stderr


# --- the real entry point, in a child process ---------------------------------------------


@pytest.mark.slow
def test_python_dash_m_reports_bad_spec_in_one_line(tmp_path: Path) -> None:
    """`python -m sagaguard` is the console script: same exit code, same single line."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(_spec(_set(("steps", 1, "changes"), ["payment", "fax"])), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "sagaguard", "check", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"sagaguard: error: {spec}: steps[1].changes[1]: 'fax'")
    assert "'reservation'" in lines[0]


@pytest.mark.slow
def test_python_dash_m_usage_error_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sagaguard", "plan", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "No such option: --no-such-flag" in done.stderr
