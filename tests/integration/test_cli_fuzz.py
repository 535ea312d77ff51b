"""Fuzzing the front doors: the spec loader and every command's arguments.

Whatever a person or a script passes, the answer is an exit code the README documents
(0; 1 only where a command says so; 2 for bad input; ``run``'s 3, 4 and 5) and at most a
short error line: never a traceback, never "internal error", never an exception that
escapes the command. The examples are derandomized so CI sees the same ones every time;
``SAGAGUARD_FUZZ_EXAMPLES=5000`` explores further with fresh randomness (hypothesis then
prints the seed of any failure, to replay it with ``--hypothesis-seed``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sagaguard.cli import app
from sagaguard.cli.errors import MAX_ERROR_CHARS
from sagaguard.cli.running import parse_json
from sagaguard.exceptions import SagaGuardError, SpecError
from sagaguard.spec import parse_spec

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
# Copies in the playground: `init --force` and `-o` may overwrite whatever they are given.
RUNNABLE = "checkout_runnable.yaml"
PLAN_ONLY = "checkout.yaml"

EXPLORE = int(os.environ.get("SAGAGUARD_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    """Few, fixed examples in CI; many fresh ones when asked to explore."""
    return settings(
        max_examples=EXPLORE or examples,
        derandomize=not EXPLORE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the spec loader ------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "process": "checkout",
    "state_store": "database",
    "observability": ["logs"],
    "alerts": {"default": "oncall", "payment": "finance"},
    "defaults": {"timeout": "10s", "max_attempts": 3},
    "steps": [
        {"id": "create_order", "changes": ["database"], "idempotent": "yes"},
        {
            "id": "charge_payment",
            "changes": ["payment"],
            "idempotent": "unknown",
            "verify": "Look the charge up",
            "compensation": "Refund",
            "external_id": "payment_id",
            "timeout": "10s",
        },
        {"id": "send_email", "changes": ["email"], "idempotent": "no", "compensation": "none"},
    ],
}

HOSTILE_TEXT = st.sampled_from(
    ["", " ", "x" * 300, "\x1b[2J", "a\nb", "\u202e", "\ud800", "\x00", "none", "yes", "1e999"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.floats(),
    st.text(max_size=20),
    HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
STEP_KEYS = [*VALID["steps"][1], "max_attempts", "pivot", "required", "handler", "bogus"]
TOP_KEYS = [*VALID, "version", "description", "bogus"]


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """The valid spec with a few keys set to anything at all, or removed."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if draw(st.booleans()):
            target: dict[str, Any] = data
            key = draw(st.sampled_from(TOP_KEYS))
        else:
            steps = data.get("steps")
            if not isinstance(steps, list) or not steps or not isinstance(steps[0], dict):
                continue
            target = draw(st.sampled_from(steps)) if all(isinstance(s, dict) for s in steps) else {}
            key = draw(st.sampled_from(STEP_KEYS))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    return data


YAML_PIECES = st.sampled_from(
    [
        "process: checkout\n", "state_store: database\n", "observability: [logs]\n", "steps:\n",
        "  - id: a\n", "    changes: [database]\n", "    idempotent: yes\n", "    timeout: .inf\n",
        "&a [x, x]\n", "*a\n", "? [a, b]\n: 1\n", "<<: *a\n", "!!binary aGk=\n", "!!set {a}\n",
        "!!python/object:os.system ls\n", "---\n", "...\n", "%YAML 1.1\n", "\t", "'", '"', "{",
        "[", "]", "}", ":", "- ", "#", "|\n", ">\n", "2001-12-14\n", "0x1F\n", "1_000\n", "~\n",
        "\x1b[2J", "\ufeff", "\u2028",
    ]
)  # fmt: skip


@fuzz_settings(300)
@given(st.one_of(mutated_specs(), VALUES), st.sampled_from(["yaml", "json"]))
def test_the_spec_loader_gives_a_process_or_one_spec_error(data: Any, syntax: str) -> None:
    if syntax == "json":
        text = json.dumps(data, allow_nan=True)
    else:
        text = yaml.safe_dump(data, allow_unicode=True)
    _loads_or_refuses(text, syntax)


@fuzz_settings(300)
@given(st.lists(st.one_of(YAML_PIECES, st.text(max_size=12)), max_size=20))
def test_the_spec_loader_survives_any_yaml_text(pieces: list[str]) -> None:
    _loads_or_refuses("".join(pieces), "yaml")


def _loads_or_refuses(text: str, syntax: str) -> None:
    try:
        parse_spec(text, source="fuzz.spec", syntax=syntax)  # type: ignore[arg-type]
    except SpecError as exc:
        message = str(exc)
        assert message.startswith("fuzz.spec: "), message[:300]
        assert len(message) <= MAX_ERROR_CHARS, len(message)


JSON_PIECES = st.sampled_from(
    ['{', '}', '[', ']', ',', ':', '"a"', '"a"', '1', '-0', '1e999', '1e-999', "9" * 5000,
     'NaN', 'Infinity', 'null', 'true', '"\\ud800"', '"\\u0000"', ' ', '\n', '\ufeff']
)  # fmt: skip


@fuzz_settings(300)
@given(st.one_of(st.lists(JSON_PIECES, max_size=30).map("".join), st.text(max_size=40)))
def test_the_input_reader_gives_json_or_one_error_naming_the_flag(text: str) -> None:
    try:
        value = parse_json(text, "--input fuzz.json")
    except SagaGuardError as exc:
        message = str(exc)
        assert message.startswith("--input fuzz.json: "), message[:200]
        assert len(message) <= MAX_ERROR_CHARS
    else:
        json.dumps(value, allow_nan=False)  # what the journal will store


# --- every command's arguments --------------------------------------------------------------

FLAG_VALUES = st.one_of(
    st.sampled_from(
        [
            "", "-", "0", "-1", "1", "2", "0.05", "0.1", "inf", "-inf", "nan", "1e300", "1e999",
            str(10**20), "9" * 400, "86400", "86401", "x", "\x1b[2J", "a\nb", "\u202e",
            "sqlite:///fuzz.sqlite3", "fuzz.sqlite3", "memory://", "nosuch://x", "sqlite://",
            "http://127.0.0.1:9/hook", "finance=http://127.0.0.1:9/f", "finanse=http://x", "=",
            "completed", "not_applied", "compensated", "running", "needs_manual_review",
            "30d", "12h", "0d", "{}", "[1]", "null", '{"payment_id": "p"}', '{"a": 1, "a": 2}',
            "plan.md", "plan.pdf", "plan", "out.json", "order.json", "dir", "markdown", "html",
            "order-1", "charge_payment", "ada", "a b",
        ]
    ),
    st.text(max_size=16),
)  # fmt: skip

TARGETS = st.sampled_from(
    [RUNNABLE, PLAN_ONLY, "missing.yaml", "dir", "order.json", "sagaguard.demo:nothing",
     "no_such_module:saga", "a:b", "", "-", "signup_saga:saga", "bad.yaml"]
)  # fmt: skip

COMMANDS: dict[tuple[str, ...], tuple[list[str], int, set[int]]] = {
    # command: (its options that take a value, how many positional arguments, exit codes)
    ("plan",): (["--format", "-f", "--output", "-o"], 1, {0, 2}),
    ("check",): ([], 1, {0, 1, 2}),
    ("init",): ([], 1, {0, 2}),
    ("run",): (
        ["--operation-id", "--input", "--webhook", "--webhook-route", "--lease", "--db"],
        1,
        {0, 2, 3, 4, 5},
    ),
    ("worker",): (
        ["--interval", "--batch", "--webhook", "--webhook-route", "--lease", "--db"],
        1,
        {0, 2},
    ),
    ("runs", "list"): (["--status", "--limit", "--db"], 0, {0, 2}),
    ("runs", "show"): (["--db"], 1, {0, 2}),
    ("runs", "prune"): (["--older-than", "--status", "--db"], 0, {0, 2}),
    ("review", "list"): (["--limit", "--db"], 1, {0, 2}),
    ("review", "resolve"): (
        ["--step", "--as", "--by", "--note", "--result", "--db"],
        2,
        {0, 2},
    ),
    (): ([], 0, {0, 2}),
    ("runs",): ([], 0, {0, 2}),
    ("review",): ([], 0, {0, 2}),
}
FLAGS_WITHOUT_VALUE = ["--json", "--force", "--help", "--version", "--bogus"]


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], set[int]]:
    """A command, some of its options with any value, some flags and positional arguments."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options, positional, codes = COMMANDS[command]
    argv = list(command)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        if options and draw(st.integers(min_value=0, max_value=3)):
            argv += [draw(st.sampled_from(options)), draw(FLAG_VALUES)]
        else:
            argv.append(draw(st.sampled_from(FLAGS_WITHOUT_VALUE)))
    argv += [draw(st.one_of(TARGETS, FLAG_VALUES)) for _ in range(draw(st.integers(0, positional)))]
    if command == ("worker",):
        argv.append("--once")  # a worker without it never ends, by design
    return argv, codes


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory holding a journal with runs, an input, a bad spec and a folder."""
    root = tmp_path_factory.mktemp("fuzz")
    for name in (RUNNABLE, PLAN_ONLY, "checkout_app.py", "signup_saga.py"):
        shutil.copy(EXAMPLES_DIR / name, root / name)
    (root / "dir").mkdir()
    (root / "order.json").write_text(json.dumps({"order": {"total_cents": 100}}), encoding="utf-8")
    (root / "bad.yaml").write_text("process: [\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("CHECKOUT_LEDGER", str(root / "ledger.jsonl"))
        patch.delenv("SAGAGUARD_DB", raising=False)
        patch.delenv("SAGAGUARD_DEBUG", raising=False)
        patch.syspath_prepend(str(root))
        lost = {"order": {"total_cents": 1}, "simulate": {"charge_payment": ["answer_lost"],
                "charge_payment.verify": "down"}}  # fmt: skip
        (root / "lost.json").write_text(json.dumps(lost), encoding="utf-8")
        for op, order in (("order-1", "order.json"), ("order-2", "lost.json")):
            done = CliRunner().invoke(
                app, ["run", RUNNABLE, "--operation-id", op, "--input", order,
                      "--db", "fuzz.sqlite3"],
            )  # fmt: skip
            assert done.exit_code in (0, 3), done.stderr
        yield root


@fuzz_settings(250)
@given(command_lines())
def test_any_command_line_exits_with_a_documented_code_and_no_traceback(
    playground: Path, case: tuple[list[str], set[int]]
) -> None:
    argv, codes = case
    before = _examples_state()
    result = CliRunner().invoke(app, argv)
    assert _examples_state() == before, "the fuzz must only ever write in its playground"
    shown = f"sagaguard {' '.join(map(repr, argv))}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{shown} raised {result.exception!r}") from result.exception
    assert result.exit_code in codes, (shown, result.exit_code, result.stderr[-500:])
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, shown
    assert "internal error" not in result.stderr, (shown, result.stderr[-500:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("sagaguard: error:")]
    assert len(errors) <= 1, (shown, errors)
    assert all(len(line) <= MAX_ERROR_CHARS + 100 for line in errors), shown
    if result.exit_code == 2 and "--help" not in argv and argv not in ([], ["runs"], ["review"]):
        assert errors, (shown, result.stderr[-500:], result.stdout[-300:])


def _examples_state() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in EXAMPLES_DIR.iterdir()}
