"""The store benchmarks run end to end with tiny settings (not a speed test: they must work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_step_cost_performs_its_runs_and_refuses_an_unknown_store(tmp_path: Path) -> None:
    """The part valgrind counts runs as is (valgrind itself is too slow for the suite)."""
    assert _run("step_cost.py", "--inner", "sqlite", "2", str(tmp_path / "j")) == ""
    assert (tmp_path / "j" / "journal.sqlite3").exists()
    refused = subprocess.run(
        [sys.executable, str(BENCH / "step_cost.py"), "--store", "disk"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("step_cost: ")


@pytest.mark.slow
def test_record_cost_prints_a_figure_per_store_and_size(tmp_path: Path) -> None:
    out = _run("record_cost.py", "--sizes", "2,3", "--runs", "1", "--dir", str(tmp_path))

    lines = out.splitlines()
    assert lines[1].split() == ["store", "n=2", "n=3"]
    assert [line.split()[0] for line in lines[2:]] == ["memory", "sqlite"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_commit_bound_prints_the_fraction_of_the_limit(tmp_path: Path) -> None:
    out = _run("commit_bound.py", "--seconds", "0.2", "--rounds", "1", "--dir", str(tmp_path))

    assert "fraction of the limit" in out
    assert float(out.splitlines()[-1].split()[-1]) > 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.postgres
def test_pg_store_prints_raw_and_store_commits_for_1_and_8_connections() -> None:
    pg.require()
    out = _run("pg_store.py", "--url", pg.server_url(), "--seconds", "0.2", "--rounds", "1")

    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["8"])]
    assert [row[0] for row in rows] == ["1", "8"]
    assert all(float(row[-1]) > 0 for row in rows)
