"""``verify_tests``: one call in a team's test file, one pytest item per scenario.

The team's test file is written to a temporary folder and collected by a child pytest, as
it would be in their repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _pytest(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_recovery.py").write_text(body)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(EXAMPLES)]),
        "SAGAGUARD_VERIFY_SEED": "17",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=env,
    )


def test_one_call_turns_the_matrix_into_one_passing_item_per_scenario(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path,
        "from checkout_saga import checkout\n"
        "from sagaguard.testing import verify_tests\n\n"
        "test_checkout = verify_tests(checkout)\n",
        "--collect-only",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    items = re.findall(r"test_checkout\[(\w+)\]", done.stdout)
    assert "timeout_charge_payment" in items
    assert "owners_racing_charge_payment" in items
    run = _pytest(tmp_path, (tmp_path / "test_recovery.py").read_text())
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{len(items)} passed" in run.stdout


def test_a_failing_scenario_fails_its_item_with_the_seed_and_the_replay(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path,
        "from sagaguard.testing import verify_tests\n\n"
        "test_buggy = verify_tests('checkout_saga_buggy:checkout')\n",
        "-k",
        "timeout_charge_payment",
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 failed" in done.stdout
    assert "timeout_charge_payment (seed 17)" in done.stdout
    assert (
        "replay: sagaguard verify checkout_saga_buggy:checkout --only timeout_charge_payment "
        "--seed 17" in done.stdout
    )


def test_the_test_function_itself_runs_a_scenario_and_fails_with_its_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In this process, for its coverage: the parametrization and one call of each outcome."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from sagaguard.testing import verify_tests

    good = verify_tests("checkout_saga:checkout", seed=3)
    [mark] = good.pytestmark  # type: ignore[attr-defined]
    scenarios = {s.id: s for s in mark.args[1]}
    good(scenarios["timeout_charge_payment"])
    bad = verify_tests("checkout_saga_buggy:checkout", seed=3)
    with pytest.raises(pytest.fail.Exception, match="--only timeout_charge_payment --seed 3"):
        bad(scenarios["timeout_charge_payment"])
