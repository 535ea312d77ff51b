"""The benchmark script runs end to end: sagaguard's half, tiny N, DBOS skipped.

It runs the real script as a child process (as ``make bench`` does) so that a broken import,
a renamed engine argument or a bad table row shows up here rather than on the day someone
wants the figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "engine_vs_dbos.py"


@pytest.mark.slow
def test_bench_sagaguard_half_prints_runs_per_second_and_exits_zero(tmp_path: Path) -> None:
    """-n 20 --skip-dbos: exit 0, a runs/s figure per durability setting, JSON that agrees."""
    out = tmp_path / "figures.jsonl"
    options = ["-n", "20", "--warmup", "2", "--skip-dbos", "--json-out", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *options, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "runs/s" in done.stdout
    printed = {
        sync: float(match.group(1))
        for sync, match in (
            (s, re.search(rf"^sagaguard\s+WAL, {s}\s+(\d+\.\d)\s", done.stdout, re.M))
            for s in ("FULL", "NORMAL")
        )
        if match
    }
    assert set(printed) == {"FULL", "NORMAL"}, done.stdout
    assert "DBOS skipped (--skip-dbos)" in done.stdout

    (line,) = out.read_text().splitlines()
    figures = json.loads(line)
    for key, sync in (("sagaguard_full", "FULL"), ("sagaguard_normal", "NORMAL")):
        row = figures[key]
        assert row["db"] == {
            "journal_mode": "WAL",
            "synchronous": sync,
            "sqlite_version": row["db"]["sqlite_version"],
        }
        assert row["runs_per_s"] == pytest.approx(printed[sync], abs=0.051)
        assert row["check_ok"] is True
        assert row["lat_p50_ms"] <= row["lat_p99_ms"]
        # A run of five steps needs more journal commits than a run of one.
        assert row["commits_per_run"] > row["commits_per_one_step_run"] >= 1
    # Fresh journals in a temporary directory inside --dir, removed afterwards.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.jsonl"]
