"""Hostile spec and input files: bounded work, one short line, exit 2, and never a hang.

An alias bomb (a few lines that expand to a billion values) once never finished; a
six-level one printed a 3.8 MB "one line"; a 1 MB bad string printed a 1 MB line; deep
nesting and a complex key (``? [a, b]``) ended as "internal error"; a FIFO given as the
spec or as ``--input`` blocked forever. What can hang runs in a child process with a
timeout, so a regression fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from sagaguard import spec as spec_module
from sagaguard.cli import app
from sagaguard.cli.errors import MAX_ERROR_CHARS
from sagaguard.exceptions import SpecError
from sagaguard.spec import MAX_SPEC_DEPTH, parse_spec
from tests.integration.cli import assert_one_line_error

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"

HEADER = "process: checkout\nstate_store: database\nobservability: [logs]\n"
STEP = "steps:\n  - id: create_order\n    changes: [database]\n    idempotent: yes\n"


def alias_bomb(levels: int) -> str:
    """The billion-laughs shape: each level is ten aliases of the level below."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join([*lines, f"process: *a{levels - 1}", ""])


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_short_error(result: Result, *fragments: str) -> str:
    line = assert_one_line_error(result, *fragments)
    assert len(line) <= MAX_ERROR_CHARS + 100, len(line)
    return line


def check(path: Path) -> Result:
    return CliRunner().invoke(app, ["check", str(path)])


def sagaguard(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command in a child process; a hang fails the test after ``timeout``."""
    return subprocess.run(
        [sys.executable, "-m", "sagaguard", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_a_nine_level_alias_bomb_is_refused_in_a_child_that_finishes(tmp_path: Path) -> None:
    spec = write(tmp_path, alias_bomb(9))
    done = sagaguard("plan", str(spec))
    assert done.returncode == 2, done.stderr[:500]
    assert done.stderr.splitlines() == [
        f"sagaguard: error: {spec}: holds more than 100000 values once YAML aliases are "
        "expanded; a spec is far smaller"
    ]


@pytest.mark.parametrize("levels", [5, 6])
def test_smaller_alias_bombs_give_one_short_line(tmp_path: Path, levels: int) -> None:
    assert_short_error(check(write(tmp_path, alias_bomb(levels))), "YAML aliases")


def test_aliases_a_spec_really_uses_still_work(tmp_path: Path) -> None:
    # A route, so that nobody-is-told (SG015, an error) does not fail the check.
    text = (
        HEADER
        + "alerts: {default: ops}\n"
        + (
            "steps:\n"
            "  - &db {id: create_order, changes: [database], idempotent: yes}\n"
            "  - {id: reserve_stock, changes: &kinds [reservation], idempotent: yes}\n"
            "  - {id: hold_seat, changes: *kinds, idempotent: yes}\n"
        )
    )
    result = check(write(tmp_path, text))
    assert result.exit_code == 0, result.stderr
    assert "3 steps" in result.stdout


def test_a_megabyte_bad_value_is_quoted_in_part(tmp_path: Path) -> None:
    text = HEADER + STEP.replace("idempotent: yes", f"idempotent: '{'x' * 1_000_000}'")
    line = assert_short_error(check(write(tmp_path, text)), "steps[0].idempotent", "characters")
    assert len(line) < 500


def test_a_megabyte_unknown_key_is_quoted_in_part(tmp_path: Path) -> None:
    text = HEADER + STEP + f"{'k' * 1_000_000}: 1\n"
    assert_short_error(check(write(tmp_path, text)))


def test_a_megabyte_of_json_in_one_string_is_quoted_in_part(tmp_path: Path) -> None:
    text = '{"process": "checkout", "state_store": "' + "s" * 1_000_000 + '"}'
    assert_short_error(check(write(tmp_path, text, "spec.json")), "state_store", "characters")


@pytest.mark.parametrize(
    "text",
    [
        "process: " + "[" * 5000 + "]" * 5000 + "\n",
        HEADER + "steps: " + "[" * 900 + "]" * 900 + "\n",
        HEADER + "steps:\n" + "".join("  " * n + "- \n" for n in range(1, 2000)),
        "".join(" " * n + f"k{n}:\n" for n in range(3000)) + " " * 3000 + "v\n",
        HEADER + "steps: &a [*a]\n",
    ],
    ids=["flow_5000", "flow_900", "block_list_2000", "block_map_3000", "recursive_alias"],
)
def test_deep_nesting_is_bad_input_not_an_internal_error(tmp_path: Path, text: str) -> None:
    assert_short_error(check(write(tmp_path, text)))


def test_deep_json_nesting_is_bad_input(tmp_path: Path) -> None:
    text = '{"process": "checkout", "steps": ' + "[" * 5000 + "]" * 5000 + "}"
    assert_short_error(check(write(tmp_path, text, "spec.json")), "nested")


def test_nesting_just_within_the_bound_reaches_validation(tmp_path: Path) -> None:
    """The bound is on depth, not on a valid spec's shape: 30 levels get a field error."""
    deep = "[" * (MAX_SPEC_DEPTH - 3) + "]" * (MAX_SPEC_DEPTH - 3)
    text = HEADER + STEP.replace("idempotent: yes", f"idempotent: {deep}")
    assert_short_error(check(write(tmp_path, text)), "steps[0].idempotent")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("? [a, b]\n: 1\n", "a list"),
        (HEADER + "? {a: 1}\n: 2\n", "a mapping"),
        (HEADER + "steps:\n  - ? [id]\n    : x\n", "a list"),
    ],
    ids=["list_key", "mapping_key", "list_key_in_a_step"],
)
def test_a_complex_key_is_bad_input(tmp_path: Path, text: str, kind: str) -> None:
    assert_short_error(check(write(tmp_path, text)), "a key must be a plain value", kind)


def test_the_pure_python_parser_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the loader recurses in Python: deep nesting is still one SpecError."""

    class PurePython(yaml.SafeLoader):
        pass

    PurePython.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        spec_module._construct_mapping,
    )
    monkeypatch.setattr(spec_module, "_UniqueKeyLoader", PurePython)
    for text in ("process: " + "[" * 5000 + "]" * 5000, alias_bomb(9), "? [a]\n: 1\n"):
        with pytest.raises(SpecError) as raised:
            parse_spec(text)
        assert len(str(raised.value)) < 200


# --- files that are not files --------------------------------------------------------------


@pytest.mark.slow
def test_a_fifo_as_the_spec_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    done = sagaguard("plan", str(fifo))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"sagaguard: error: {fifo}: is a named pipe (FIFO), not a regular file"
    ]


@pytest.mark.slow
def test_a_fifo_as_the_input_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "order.json"
    os.mkfifo(fifo)
    done = sagaguard(
        "run", str(RUNNABLE), "--operation-id", "o-1", "--input", str(fifo),
        "--db", f"sqlite:///{tmp_path}/journal.sqlite3",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"sagaguard: error: --input {fifo}: is a named pipe (FIFO), not a regular file"
    ]
    assert not (tmp_path / "journal.sqlite3").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_as_the_spec_is_refused_before_it_is_read() -> None:
    assert_short_error(check(Path("/dev/zero")), "/dev/zero", "character device")
