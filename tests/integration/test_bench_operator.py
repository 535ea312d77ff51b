"""The operator reads benchmark runs end to end with tiny settings (not a speed test: it must work).

The script checks what it reads (the counts, a page holding oddities, the whole queue)
before it times anything, so a run here also proves the bulk-written journal is readable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "operator_reads.py"
COLUMNS = ["journal_counts", "store page", "operator page", "review_queue", "run_detail"]


def _run(*args: str) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "200", "--calls", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(column in lines[1] for column in COLUMNS), lines[1]
    return [line.split() for line in lines[2:]]


@pytest.mark.slow
def test_operator_reads_prints_a_figure_per_read_for_sqlite(tmp_path: Path) -> None:
    rows = _run("--dir", str(tmp_path))

    assert [row[:2] for row in rows] == [["sqlite", "200"]]
    assert len(rows[0]) == 2 + len(COLUMNS)
    assert all(float(figure) > 0 for figure in rows[0][2:])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.postgres
def test_operator_reads_on_postgresql_drops_its_schema(tmp_path: Path) -> None:
    pg.require()
    import psycopg

    schema = pg.fresh_schema()
    rows = _run("--dir", str(tmp_path), "--pg", pg.server_url(), "--pg-schema", schema)

    assert [row[:2] for row in rows] == [["sqlite", "200"], ["postgresql", "200"]]
    with psycopg.connect(pg.server_url(), autocommit=True) as conn:
        left = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        assert left.fetchone() is None
