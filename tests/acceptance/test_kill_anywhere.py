"""SIGKILL at an arbitrary moment, not at a fault point: recovery still loses nothing.

A child starts a stream of checkouts (every third one rolls back) and the test kills it
from outside after a while, wherever it happens to be: inside a SQLite transaction, between
a ledger write and its call, in a backoff sleep. Then one recovery pass must settle every
run the journal holds, and every invariant must hold for each of them.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import pytest

from sagaguard.engine import RecordingNotifier
from tests.acceptance.conftest import KILLED, Shop
from tests.acceptance.shop import KINDS

pytestmark = pytest.mark.slow

MakeShop = Callable[[str], Shop]

SEED_ENV = "SAGAGUARD_TEST_SEED"
"""Set it to replay a failed run: the seed is printed by every run (pytest shows it on failure)."""


@pytest.mark.parametrize("kind", KINDS)
def test_a_kill_at_any_moment_leaves_every_run_recoverable_and_consistent(
    shop: MakeShop, kind: str
) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"{SEED_ENV}={seed}")
    rng = random.Random(seed)
    s = shop(kind)
    child = s.spawn("run", op="burst", count=500)
    # Wait for the first run to exist, then let the child work a random while.
    deadline = time.time() + 30
    while not s.journal.exists() or not s.ledger.entries():
        assert time.time() < deadline, "the child never started a run"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.05, 0.4))  # the kill lands wherever the child is by then
    child.send_signal(signal.SIGKILL)
    died = s.finish(child)
    assert died.returncode == KILLED, f"the child finished before the kill (seed {seed})"

    store = s.store()
    runs = store.list_runs(limit=1000)
    assert runs, "runs were started"
    notifier = RecordingNotifier()
    with s.engine(notifier=notifier) as engine:
        recovered = engine.recover(limit=1000)
    assert len(recovered) <= 1, "one run at a time was in flight when the process died"
    for run in runs:
        snapshot = store.load(run.operation_id)
        where = f"{run.operation_id} ({SEED_ENV}={seed})"
        assert not snapshot.run.status.active, f"{where} left {snapshot.run.status}"
        violations = s.violations(run.operation_id)
        assert violations == [], f"{where}: " + "\n".join(map(str, violations))
