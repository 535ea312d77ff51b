"""``sagaguard verify``: exit codes, formats, replay lines and one-line errors."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cli import assert_one_line_error, invoke

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SPEC = str(EXAMPLES / "checkout.yaml")


@pytest.fixture
def in_examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run from examples/, as the README does (the current directory is on the import path)."""
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return


def test_a_spec_that_survives_exits_0_with_its_table() -> None:
    result = invoke("verify", SPEC)
    assert result.exit_code == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{SPEC}: ")
    assert "all passed" in first
    assert "seed 0" in first
    assert "the plan's tests" in result.stdout
    assert "a crash at a fault point" in result.stdout
    assert result.stderr == ""


@pytest.mark.usefixtures("in_examples")
def test_a_buggy_saga_exits_1_and_each_failure_prints_its_replay_command() -> None:
    result = invoke("verify", "checkout_saga_buggy:checkout", "--seed", "42")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout.splitlines()[0]
    assert "What failed" in result.stdout
    replays = [
        line.split("replay: ", 1)[1] for line in result.stdout.splitlines() if "replay: " in line
    ]
    assert replays, result.stdout
    words = shlex.split(replays[0])
    assert words[:3] == ["sagaguard", "verify", "checkout_saga_buggy:checkout"]
    assert words[words.index("--seed") + 1] == "42"
    again = invoke(*words[1:])
    assert again.exit_code == 1
    assert "1 of 1 scenarios FAILED" in again.stdout.splitlines()[0]


@pytest.mark.usefixtures("in_examples")
def test_json_carries_every_scenario_with_expected_and_observed_ends() -> None:
    result = invoke("verify", "checkout_saga:checkout", "--format", "json")
    assert result.exit_code == 0, result.stderr
    proof = json.loads(result.stdout)
    assert proof["format"] == "sagaguard-proof/1"
    assert proof["passed"] is True
    assert proof["mode"] == "code"
    scenario = next(s for s in proof["scenarios"] if s["id"] == "timeout_charge_payment")
    assert scenario["expected"]["run_status"] == scenario["observed"]["run_status"] == "completed"
    assert scenario["faults"] == [
        {"step": "charge_payment", "point": "after_call", "fault": "timeout", "attempt": 1}
    ]
    assert scenario["replay"].endswith("--only timeout_charge_payment --seed 0")


def test_markdown_and_html_outputs_by_flag_and_by_suffix(tmp_path: Path) -> None:
    markdown = invoke("verify", SPEC, "--only", "timeout_charge_payment", "-f", "markdown")
    assert markdown.exit_code == 0
    assert markdown.stdout.startswith("# Proof: checkout")
    page = tmp_path / "proof.html"
    html = invoke(
        "verify", SPEC, "--only", "timeout_charge_payment,duplicate_concurrent", "-o", str(page)
    )
    assert html.exit_code == 0, html.stderr
    assert f"wrote {page}" in html.stderr
    text = page.read_text()
    assert text.index('id="proof"') < text.index("Partial-failure tests"), "proof, then the plan"
    assert "<script" not in text
    assert "http" not in text.split("<body>")[1][:2000]
    assert "<code>duplicate_concurrent</code>" in text


def test_explore_runs_random_schedules_beyond_the_matrix() -> None:
    plain = json.loads(invoke("verify", SPEC, "-f", "json").stdout)
    explored = json.loads(
        invoke("verify", SPEC, "-f", "json", "--explore", "12", "--seed", "3").stdout
    )
    assert explored["counts"]["scenarios"] == plain["counts"]["scenarios"] + 12
    assert explored["passed"] is True
    ids = [s["id"] for s in explored["scenarios"] if s["kind"] == "explore"]
    assert ids == [f"explore_{n:04d}" for n in range(1, 13)]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("nosuchmodule:saga",), ("nosuchmodule",)),
        ((SPEC, "--only", "no_such_scenario"), ("--only no_such_scenario", "no such scenario")),
        ((SPEC, "--db", "mysql://x"), ("mysql://x",)),
        ((SPEC, "--seed", "-1"), ("--seed",)),
        ((SPEC, "--explore", "1000000"), ("--explore",)),
        ((SPEC, "-o", "proof.pdf"), ("proof.pdf", "suffix")),
        ((str(EXAMPLES / "missing.yaml"),), ("missing.yaml",)),
    ],
    ids=["module", "only", "db", "seed", "explore", "suffix", "spec"],
)
def test_bad_input_is_one_line_and_exit_2(
    args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_one_line_error(invoke("verify", *args), *fragments)


def test_the_installed_command_runs_a_spec_in_a_child_process(tmp_path: Path) -> None:
    """The console script, as a person types it, with the proof written to a file."""
    out = tmp_path / "proof.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sagaguard",
            "verify",
            SPEC,
            "--only",
            "owners_racing_charge_payment",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["counts"] == {"scenarios": 1, "passed": 1, "failed": 0}


@pytest.mark.usefixtures("in_examples")
def test_a_saga_whose_fakes_every_scenario_shares_is_named_as_such() -> None:
    """Its module-level services remember the first run's email: the table says why."""
    result = invoke("verify", "signup_saga:saga", "--only", "duplicate_sequential")
    assert "every scenario ran the same saga object" in result.stdout
    fresh = invoke("verify", "checkout_saga:checkout", "--only", "duplicate_sequential")
    assert "same saga object" not in fresh.stdout


def test_code_runs_a_spec_s_own_bound_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkout_runnable.yaml binds checkout_app's functions; --code runs them."""
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    spec = str(EXAMPLES / "checkout_runnable.yaml")
    order = str(EXAMPLES / "checkout_order.json")
    result = invoke(
        "verify", spec, "--code", "--input", order, "-f", "json", "--only", "timeout_charge_payment"
    )
    assert result.exit_code == 0, result.stdout[-2000:] + result.stderr
    proof = json.loads(result.stdout)
    assert proof["mode"] == "code"
    assert proof["passed"] is True
    assert (tmp_path / "ledger.jsonl").read_text().count("charge") >= 1, "checkout_app's code ran"
    simulated = json.loads(
        invoke("verify", spec, "-f", "json", "--only", "timeout_charge_payment").stdout
    )
    assert simulated["mode"] == "spec"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_person_watching_stderr_sees_progress_and_a_pipe_sees_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sagaguard.cli import verify as command
    from sagaguard.testing import load_subject
    from sagaguard.testing import verify as run_matrix

    source = load_subject(SPEC)
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    seen: list[tuple[int, int]] = []
    with command._progress() as progress:
        assert progress is not None

        def both(result: Any, done: int, total: int) -> None:
            seen.append((done, total))
            progress(result, done, total)

        run_matrix(source, only=["timeout_charge_payment", "duplicate_sequential"], progress=both)
    assert seen == [(1, 2), (2, 2)]
    assert "verify" in screen.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with command._progress() as progress:
        assert progress is None
