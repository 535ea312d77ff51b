"""Fleet acceptance: four worker processes, many runs, random faults and SIGKILLs, PostgreSQL.

Steps fail, time out and hang at random (seeded); workers are killed with SIGKILL at random
moments and started again, or frozen with SIGSTOP until others took over their runs (then
they wake believing they still own them: only fencing stops them). Afterwards every run must
have stopped (terminal or waiting for a person), the ledger must show no second effect of a
non-idempotent step and no double compensation, every call and write must have been made
under the claim current at the time, and, sampled throughout, no active run may sit with an
expired lease for longer than one poll interval plus the time a worker takes to finish the
run in hand.

``SAGAGUARD_FLEET_RUNS`` sets how many runs (default 1000), ``SAGAGUARD_FLEET_SEED`` the seed
(logged on every run and in every failure).
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from tests.fleet.conftest import Fleet, judge

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RUNS = int(os.environ.get("SAGAGUARD_FLEET_RUNS", "1000"))
WORKERS = 4
KILLS = 12
FREEZES = 4
IN_HAND_S = 1.5
"""How long a worker may still be busy with the run in hand before it claims the next one:
the slowest run here is a few retries and hung calls (0.4 s each)."""


class StaleLeaseWatch:
    """Samples the journal for active runs whose lease expired longer ago than allowed."""

    def __init__(self, fleet: Fleet, allowed_s: float) -> None:
        self._fleet = fleet
        self._allowed_s = allowed_s
        self._done = threading.Event()
        self.worst_s = 0.0
        self.offenders: list[tuple[str, float]] = []
        self.samples = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StaleLeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        import psycopg

        table = f'"{self._fleet.schema}".runs'
        query = (
            f"SELECT operation_id, extract(epoch FROM now()) - lease_expires_at FROM {table} "
            "WHERE status IN ('running', 'compensating') AND lease_expires_at IS NOT NULL "
            "AND lease_expires_at < extract(epoch FROM now())"
        )
        with psycopg.connect(pg_url(), autocommit=True) as conn:
            while not self._done.wait(0.1):
                self.samples += 1
                for op, late in conn.execute(query).fetchall():
                    self.worst_s = max(self.worst_s, float(late))
                    if late > self._allowed_s:
                        self.offenders.append((op, float(late)))


def pg_url() -> str:
    from tests import pg

    return pg.server_url()


def test_a_fleet_killed_at_random_settles_every_run_exactly_once(fleet: Fleet) -> None:
    rng = random.Random(fleet.seed)
    for number in range(WORKERS):
        fleet.start(number)
    kills: list[float] = []
    frozen: list[int] = []
    with StaleLeaseWatch(fleet, allowed_s=fleet.interval_s + IN_HAND_S) as watch:
        ops = fleet.submit(RUNS)
        started = time.monotonic()

        def chaos() -> None:
            """Between checks: SIGKILL a random worker and start it again, or freeze one."""
            draw = rng.random()
            if not kills or (len(kills) < KILLS and draw < 0.6):
                victim = rng.randrange(WORKERS)
                fleet.kill(victim)
                kills.append(time.monotonic() - started)
                fleet.start(victim)
            elif not frozen or (len(frozen) < FREEZES and draw < 0.9):
                frozen.append(fleet.freeze(rng.randrange(WORKERS)))
            else:
                time.sleep(0.2)  # a bounded wait between checks, not an ordering

        fleet.wait_settled(ops, timeout_s=110, between=chaos)
    fleet.stop_all()
    figures = judge(fleet, ops)
    print(
        f"seed {fleet.seed}: {RUNS} runs in {time.monotonic() - started:.1f}s, {figures}, "
        f"{len(kills)} kills, {len(frozen)} freezes taking over {sum(frozen)} runs, worst "
        f"stale lease {watch.worst_s:.2f}s over {watch.samples} samples"
    )
    assert kills, f"seed {fleet.seed}: no worker was killed"
    assert figures["takeovers"] > 0, f"seed {fleet.seed}: no run was taken over from the dead"
    assert not watch.offenders, (
        f"seed {fleet.seed}: runs left active with an expired lease past "
        f"{fleet.interval_s + IN_HAND_S}s: {watch.offenders[:5]}"
    )
    statuses = figures["statuses"]
    assert set(statuses) <= {"completed", "compensated", "failed", "needs_manual_review"}
    assert statuses.get("completed", 0) > RUNS // 2, f"seed {fleet.seed}: {statuses}"
