"""The threads sync calls run on: reused, never left behind, and waited for at exit."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.engine.calls import Call, OutcomeKind, ThreadCaller
from sagaguard.storage import JournalStore, RunStatus

WAIT_S = 10.0
"""Upper bound for a wait that the test's own events end much sooner."""


def _saga(seen: set[str]) -> Saga:
    saga = Saga("threads", defaults={"timeout": "5s"})

    for number in (1, 2, 3):

        def step(ctx: StepContext) -> dict[str, int]:
            seen.add(threading.current_thread().name)
            return {"n": ctx.attempt}

        step.__name__ = f"step_{number}"
        step.__doc__ = f"Step {number}"
        saga.step(changes=["database"], idempotent="yes")(step)
    return saga


def _call_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sagaguard-call")}


def _ctx() -> StepContext:
    return StepContext("op", "s", 1, "op:s", 1, None, {}, {})


def test_one_run_after_another_reuses_one_call_thread(store: JournalStore) -> None:
    seen: set[str] = set()
    with Engine(store=store, owner="e") as engine:
        for number in range(3):
            engine.run(_saga(seen), operation_id=f"op-{number}", input=None)
    assert len(seen) == 1, seen


def test_a_closed_engine_leaves_no_call_thread_behind(store: JournalStore) -> None:
    before = _call_threads()
    with Engine(store=store, owner="e") as engine:
        snapshot = engine.run(_saga(set()), operation_id="op", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    for thread in _call_threads() - before:
        thread.join(WAIT_S)
        assert not thread.is_alive(), thread.name


def test_an_engine_nobody_closed_ends_its_idle_threads_once_collected(
    store: JournalStore,
) -> None:
    before = _call_threads()
    engine = Engine(store=store, owner="e")
    engine.run(_saga(set()), operation_id="op", input=None)
    started = _call_threads() - before
    assert started, "the run's calls ran on a call thread"
    del engine
    gc.collect()
    for thread in started:
        thread.join(WAIT_S)
        assert not thread.is_alive(), thread.name


def test_a_call_queued_behind_a_hung_one_is_withdrawn_at_close_and_never_runs() -> None:
    release, ran = threading.Event(), []
    caller = ThreadCaller(max_workers=1)
    hung = caller.start(Call(lambda ctx: release.wait(WAIT_S), _ctx(), 5.0))
    queued = caller.start(Call(lambda ctx: ran.append("queued"), _ctx(), 5.0))
    caller.close()
    outcome = queued.wait(WAIT_S)
    release.set()
    assert hung.wait(WAIT_S).kind is OutcomeKind.OK
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason == "withdrawn before it started"
    assert ran == [], "a withdrawn call never runs"


def test_a_call_still_running_at_exit_is_waited_for(tmp_path: Path) -> None:
    """As a pool's threads were: the process ends after the call in flight, not in it."""
    done = tmp_path / "done"
    script = textwrap.dedent(
        f"""
        import threading
        from sagaguard.engine import Engine, Saga

        saga = Saga("late", defaults={{"timeout": "0.1s", "max_attempts": 1}})

        @saga.step(changes=["payment"], idempotent="no")
        def charge(ctx):
            threading.Event().wait(0.5)
            open({str(done)!r}, "w").close()

        @charge.compensate
        def refund(ctx):
            '''Refund.'''

        engine = Engine(store="memory://", owner="e")
        print(engine.run(saga, operation_id="op", input=None).run.status.value)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "needs_manual_review", "the call was in flight at return"
    assert done.exists(), "the process waited for the call in flight before it ended"
