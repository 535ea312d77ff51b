"""Database faults under load: killed backends and a restarted server; the fleet finishes.

Two workers drive runs while every backend the fleet opened (journal pool, LISTEN, the
providers' ledger) is killed with ``pg_terminate_backend``, twice, and then the server
crashes and restarts (an immediate stop: claims, whose commits do not wait for the disk,
may be lost). The workers reconnect with backoff and every run settles with the invariants
intact. A third worker polls only every two minutes: after the restart it must still pick up
newly submitted runs within seconds, which only a re-established LISTEN can explain.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

from tests import pg
from tests.fleet.conftest import Fleet, judge

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RUNS = 300
SLEEPER_INTERVAL_S = 120.0
WOKEN_WITHIN_S = 20.0
"""Far below the sleeper's poll interval: only a NOTIFY gets it there in time."""


def _until(condition: Callable[[], bool], what: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)  # a bounded wait for a condition, not an ordering


def _listening(fleet: Fleet) -> int:
    """The fleet's connections that are LISTENing right now."""
    import psycopg

    with psycopg.connect(pg.server_url(), autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND query LIKE 'LISTEN %%'",
            (fleet.app,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_killed_backends_and_a_restart_under_load_then_listen_wakes_a_sleeper(
    fleet: Fleet,
) -> None:
    # A crash, not a clean stop: what a commit did not wait to flush (a claim) is lost.
    restart = pg.cluster_command("restart", mode="immediate")
    with pg.server_comes_back():
        fleet.start(0)
        fleet.start(1)
        sleeper = fleet.start(2, concurrency=1, interval_s=SLEEPER_INTERVAL_S)
        ops = fleet.submit(RUNS)
        settled = lambda: sum(n for s, n in fleet.statuses(ops).items() if not s.active)  # noqa: E731
        killed = []
        for share in (0.2, 0.4):
            _until(lambda share=share: settled() >= RUNS * share, f"{share:.0%} of runs settled")
            killed.append(pg.terminate(fleet.app))
        _until(lambda: settled() >= RUNS * 0.6, "60% of runs settled")
        done = subprocess.run(restart, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        _until(lambda: pg.unavailable.__wrapped__() is None, "the server accepts again")
        fleet.wait_settled(ops, timeout_s=90, between=lambda: time.sleep(0.2))
        assert all(killed), f"backends killed per round: {killed}"

        # Only the sleeper is left; it must hear the NOTIFY of a new run over its new LISTEN.
        fleet.stop(0)
        fleet.stop(1)
        _until(lambda: _listening(fleet) == 1, "the sleeper LISTENs again")
        woken = []
        for name in ("after-restart-1", "after-restart-2"):
            [op] = fleet.submit(1, prefix=name)
            started = time.monotonic()
            fleet.wait_settled([op], timeout_s=WOKEN_WITHIN_S, between=lambda: time.sleep(0.05))
            woken.append(time.monotonic() - started)
            claimers = [e.actor for e in fleet.store.events(op) if e.kind == "claimed"]
            assert claimers == [sleeper.owner]
            ops.append(op)
        fleet.stop_all()
        figures = judge(fleet, ops)
    print(f"seed {fleet.seed}: {figures}, killed {killed}, sleeper woken in {woken}")
