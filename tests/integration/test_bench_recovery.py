"""bench/recovery.py runs end to end: a few crashed runs, recovered by one Worker, figures out.

The real script runs as a child process, SQLite only (no PostgreSQL URL in its environment),
so a renamed Worker argument or a broken table row shows up here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "recovery.py"


@pytest.mark.slow
def test_bench_recovery_prints_runs_per_second_per_concurrency(tmp_path: Path) -> None:
    out = tmp_path / "figures.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "SAGAGUARD_TEST_PG_URL"}
    options = ["-n", "20", "--concurrency", "1,2", "--dir", str(tmp_path), "--json-out", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    printed = {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(
            r"^sqlite\s+(\d+)\s+[\d.]+\s+([\d.]+)\s+(?:met|NOT met)$", done.stdout, re.M
        )
    }
    assert set(printed) == {1, 2}, done.stdout
    assert "PostgreSQL skipped" in done.stdout
    figures = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(f["store"], f["concurrency"], f["runs"]) for f in figures] == [
        ("sqlite", 1, 20),
        ("sqlite", 2, 20),
    ]
    for figure in figures:
        assert figure["ok"] is True
        assert figure["completed"] == 20
        assert figure["runs_per_s"] == pytest.approx(printed[figure["concurrency"]], abs=0.051)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.jsonl"]
