"""CrashAt and FaultPlan: they crash exactly where aimed, and a plan traces every point."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage.base import StepStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.testing import CrashAt, FaultPlan, FaultPoint, Hit, SimulatedCrash

AT = {"operation_id": "op", "step_id": "charge", "attempt": 2}


def test_crash_at_matches_its_point_and_any_step_when_unfiltered() -> None:
    crash = CrashAt(FaultPoint.AFTER_CALL)
    assert crash.matches(FaultPoint.AFTER_CALL, **AT)
    assert not crash.matches(FaultPoint.BEFORE_CALL, **AT)
    crash.check(FaultPoint.BEFORE_CALL, **AT)  # another point: nothing happens
    assert crash.fired == []


@pytest.mark.parametrize(
    ("filters", "hit"),
    [
        ({"step_id": "charge"}, True),
        ({"step_id": "reserve"}, False),
        ({"attempt": 2}, True),
        ({"attempt": 1}, False),
        ({"operation_id": "op"}, True),
        ({"operation_id": "other"}, False),
        ({"step_id": "charge", "attempt": 2, "operation_id": "op"}, True),
        ({"step_id": "charge", "attempt": 3}, False),
    ],
)
def test_crash_at_filters_on_step_attempt_and_run(filters: dict[str, object], hit: bool) -> None:
    crash = CrashAt("after_call", **filters)  # type: ignore[arg-type]
    assert crash.matches(FaultPoint.AFTER_CALL, **AT) is hit


def test_raise_mode_raises_a_simulated_crash_that_except_exception_cannot_swallow() -> None:
    crash = CrashAt(FaultPoint.BEFORE_CALL, step_id="charge")
    assert not issubclass(SimulatedCrash, Exception)
    with pytest.raises(SimulatedCrash, match="before_call of step charge attempt 2"):
        crash.check(FaultPoint.BEFORE_CALL, **AT)
    assert crash.fired == [Hit(FaultPoint.BEFORE_CALL, "op", "charge", 2)]


def test_times_bounds_how_often_it_fires() -> None:
    crash = CrashAt(FaultPoint.AFTER_CALL, times=1)
    with pytest.raises(SimulatedCrash):
        crash.check(FaultPoint.AFTER_CALL, **AT)
    assert crash.exhausted
    crash.check(FaultPoint.AFTER_CALL, **AT)  # spent: passes
    assert len(crash.fired) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"point": "after_lunch"}, "after_lunch"),
        ({"point": "after_call", "mode": "explode"}, "mode"),
        ({"point": "after_call", "attempt": 0}, "attempt"),
        ({"point": "after_call", "times": 0}, "times"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrashAt(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "point", "step_id", "attempt"),
    [
        ("after_call", FaultPoint.AFTER_CALL, None, None),
        ("before_compensation:charge", FaultPoint.BEFORE_COMPENSATION, "charge", None),
        ("after_commit:charge:3", FaultPoint.AFTER_COMMIT, "charge", 3),
        ("before_call:*:2", FaultPoint.BEFORE_CALL, None, 2),
    ],
)
def test_from_text_reads_point_step_and_attempt(
    text: str, point: FaultPoint, step_id: str | None, attempt: int | None
) -> None:
    crash = CrashAt.from_text(text, mode="kill")
    assert (crash.point, crash.step_id, crash.attempt, crash.mode) == (
        point,
        step_id,
        attempt,
        "kill",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected point"),
        ("nowhere", "unknown fault point 'nowhere'"),
        ("after_call:charge:x", "attempt must be a positive number"),
        ("a:b:c:d", "expected point"),
    ],
)
def test_from_text_refuses_malformed_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrashAt.from_text(text)


def test_repr_names_the_point_and_filters() -> None:
    crash = CrashAt("after_call", step_id="charge", attempt=2, mode="kill")
    assert repr(crash) == "CrashAt('after_call', step_id='charge', attempt=2, mode='kill')"


@pytest.mark.slow
def test_kill_mode_kills_the_process_with_sigkill_and_runs_no_cleanup() -> None:
    script = textwrap.dedent(
        """
        import sys
        from sagaguard.testing import CrashAt
        try:
            CrashAt("after_call", mode="kill").check(
                "after_call", operation_id="op", step_id="s", attempt=1
            )
        finally:
            print("cleanup ran")
        sys.exit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert "cleanup ran" not in done.stdout


def _two_steps() -> Saga:
    saga = Saga("pair", defaults={"backoff_base": 0.001})

    @saga.step(changes=["database"], idempotent="yes")
    def first(ctx: StepContext) -> int:
        return 1

    @saga.step(changes=["database"], idempotent="yes")
    def second(ctx: StepContext) -> int:
        return 2

    return saga


def test_fault_plan_traces_every_point_the_engine_passes_in_order() -> None:
    plan = FaultPlan()
    with Engine(store="memory://", faults=plan) as engine:
        engine.run(_two_steps(), operation_id="op", input=None)
    assert [(h.point.value, h.step_id, h.attempt) for h in plan.seen] == [
        ("before_call", "first", 1),
        ("after_call", "first", 1),
        ("after_commit", "first", 1),
        ("before_call", "second", 1),
        ("after_call", "second", 1),
        ("after_commit", "second", 1),
    ]
    assert plan.fired == []


def test_fault_plan_offers_each_point_to_every_injector_and_the_first_crash_wins() -> None:
    later = CrashAt(FaultPoint.AFTER_CALL, step_id="second")
    first = CrashAt(FaultPoint.BEFORE_CALL, step_id="second")
    plan = FaultPlan(faults=[later]).add(first)
    store = InMemoryStore()
    with Engine(store=store, faults=plan) as engine, pytest.raises(SimulatedCrash):
        engine.run(_two_steps(), operation_id="op", input=None)
    assert plan.fired == [Hit(FaultPoint.BEFORE_CALL, "op", "second", 1)]
    assert store.load("op").step("second").status is StepStatus.STARTED
