"""The verify benchmark runs end to end with tiny settings, and its figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "verify_matrix.py"


@pytest.mark.slow
def test_bench_verify_prints_scenarios_per_second_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "figures.jsonl"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "6", "--repeat", "1", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "scenarios/s" in done.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["subject"] for r in rows] == ["6-step saga (spec)", "checkout example (spec)"]
    for row in rows:
        assert row["failed"] == 0
        assert row["scenarios"] > 10
        assert row["scenarios_per_s"] == pytest.approx(row["scenarios"] / row["seconds"], rel=0.05)
