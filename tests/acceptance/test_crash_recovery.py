"""SIGKILL at every journal point, for every kind of charge, then recovery from the journal.

Each case runs the checkout in a child process that kills itself at one fault point, checks
what the journal held at the moment of death, recovers the run with an engine whose clock is
past the dead owner's lease, and checks the journal and the ledger of external calls: no
second charge unless the rules make it safe, the idempotency key kept, no run lost, the run
terminal or waiting for a person, and every invariant of DESIGN.md section 4 intact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sagaguard.engine import AlertKind, RecordingNotifier
from sagaguard.storage.base import RunStatus, StepStatus
from tests.acceptance.conftest import LATER, Shop
from tests.acceptance.shop import KINDS

pytestmark = pytest.mark.slow

OP = "op-1"
MakeShop = Callable[[str], Shop]


@dataclass(frozen=True)
class Expected:
    """What the rules (DESIGN.md section 2) say recovery must end with."""

    status: RunStatus
    charge_attempts: list[int]
    """Attempt numbers of the charge calls in the ledger, crash and recovery together."""
    verifies: int = 0


# crash_before_persist: idempotent -> retry with the same key; not idempotent -> verify if it
# can, else a person. A crash after the commit has nothing unknown: the run just goes on.
FORWARD: dict[tuple[str, str], Expected] = {
    ("before_call", "verify"): Expected(RunStatus.COMPLETED, [2], verifies=1),
    ("before_call", "noverify"): Expected(RunStatus.NEEDS_MANUAL_REVIEW, []),
    ("before_call", "idempotent"): Expected(RunStatus.COMPLETED, [2]),
    ("after_call", "verify"): Expected(RunStatus.COMPLETED, [1], verifies=1),
    ("after_call", "noverify"): Expected(RunStatus.NEEDS_MANUAL_REVIEW, [1]),
    ("after_call", "idempotent"): Expected(RunStatus.COMPLETED, [1, 2]),
    ("after_commit", "verify"): Expected(RunStatus.COMPLETED, [1]),
    ("after_commit", "noverify"): Expected(RunStatus.COMPLETED, [1]),
    ("after_commit", "idempotent"): Expected(RunStatus.COMPLETED, [1]),
}


@pytest.mark.parametrize(("point", "kind"), list(FORWARD), ids=[f"{p}-{k}" for p, k in FORWARD])
def test_sigkill_in_a_forward_step_then_recovery_never_charges_blind(
    shop: MakeShop, point: str, kind: str
) -> None:
    expected = FORWARD[(point, kind)]
    s = shop(kind)
    died = s.child("run", op=OP, crash=f"{point}:charge")
    assert died.killed, f"the child should die of SIGKILL: rc={died.returncode} {died.stderr}"

    store = s.store()
    at_death = store.load(OP)
    assert at_death.run.status is RunStatus.RUNNING, "the run is not lost: still running"
    assert (at_death.run.owner or "").startswith("child-"), "the dead owner still holds it"
    charge = at_death.step("charge")
    assert charge.attempts == 1, "the attempt was journaled before the call"
    written = StepStatus.COMPLETED if point == "after_commit" else StepStatus.STARTED
    assert charge.status is written
    calls_at_death = s.ledger.select(step_id="charge", kind="call")
    assert len(calls_at_death) == (0 if point == "before_call" else 1)

    notifier = RecordingNotifier()
    with s.engine(notifier=notifier) as engine:
        recovered = engine.recover()
    assert [r.run.operation_id for r in recovered] == [OP]
    after = recovered[0]
    assert after.run.status is expected.status

    calls = s.ledger.select(step_id="charge", kind="call")
    assert [c.attempt for c in calls] == expected.charge_attempts
    assert {c.idempotency_key for c in calls} <= {charge.idempotency_key}, "same key always"
    assert len(s.ledger.select(step_id="charge", kind="verify")) == expected.verifies
    assert s.ledger.select(kind="compensate") == [], "nothing was undone"
    if expected.status is RunStatus.NEEDS_MANUAL_REVIEW:
        assert after.step("charge").status is StepStatus.NEEDS_MANUAL_REVIEW
        assert "charge" in (after.run.reason or "")
        assert [(a.kind, a.step_id) for a in notifier.alerts] == [
            (AlertKind.NEEDS_MANUAL_REVIEW, "charge")
        ]
        assert s.ledger.select(step_id="ship") == [], "nothing moves past an unsettled charge"
    else:
        assert [r.status for r in after.steps] == [StepStatus.COMPLETED] * 3
        assert len(s.ledger.select(step_id="ship", kind="call")) == 1
        assert len(s.ledger.select(step_id="reserve", kind="call")) == 1
    assert [r.operation_id for r in store.list_runs()] == [OP], "one operation, one run"
    assert s.violations(OP, alerts=notifier.alerts) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("point", ["before_compensation", "after_compensation"])
def test_sigkill_inside_a_compensation_halts_the_rollback_for_a_person(
    shop: MakeShop, point: str, kind: str
) -> None:
    s = shop(kind)
    died = s.child("run", op=OP, input={"ship_fails": True}, crash=f"{point}:charge")
    assert died.killed, f"rc={died.returncode} {died.stderr}"

    store = s.store()
    at_death = store.load(OP)
    assert at_death.run.status is RunStatus.COMPENSATING
    assert at_death.step("charge").status is StepStatus.COMPENSATING
    assert at_death.step("charge").compensation_attempts == 1
    refunds = len(s.ledger.select(step_id="charge", kind="compensate"))
    assert refunds == (1 if point == "after_compensation" else 0)

    notifier = RecordingNotifier()
    with s.engine(notifier=notifier) as engine:
        [after] = engine.recover()
        assert after.run.status is RunStatus.NEEDS_MANUAL_REVIEW
        assert after.step("charge").status is StepStatus.COMPENSATION_FAILED
        assert after.step("reserve").status is StepStatus.COMPLETED, "the rollback halted"
        assert len(s.ledger.select(step_id="charge", kind="compensate")) == refunds, (
            "a compensation whose outcome is unknown is never repeated"
        )
        assert s.ledger.select(step_id="reserve", kind="compensate") == []
        failed = [e for e in store.events(OP) if e.kind == "compensation_failed"]
        assert [e.step_id for e in failed] == ["charge"]
        assert [(a.kind, a.step_id, a.route) for a in notifier.alerts] == [
            (AlertKind.COMPENSATION_FAILED, "charge", "finance")
        ]
        assert s.violations(OP, alerts=notifier.alerts) == []

        done = engine.resolve(
            OP, step_id="charge", outcome="compensated", by="ops", note="refunded by hand"
        )
    assert done.run.status is RunStatus.COMPENSATED
    assert [e.step_id for e in s.ledger.select(kind="compensate")].count("reserve") == 1
    assert s.violations(OP, alerts=notifier.alerts) == []


@pytest.mark.parametrize(
    ("kind", "crash", "final", "charge_attempts", "verifies"),
    [
        # Idempotent: every crash after the call leaves an unknown outcome; retried with the
        # same key until the bound, then a person (the charge may exist).
        ("idempotent", "after_call:charge", RunStatus.NEEDS_MANUAL_REVIEW, [1, 2, 3], 0),
        # Verifiable: every crash is before the call; verify says not applied each time, so
        # the bound is reached with nothing charged and the run rolls back.
        ("verify", "before_call:charge", RunStatus.COMPENSATED, [], 3),
    ],
    ids=["idempotent-after-call", "verify-before-call"],
)
def test_attempts_survive_a_crash_on_every_attempt_and_stop_at_the_bound(
    shop: MakeShop,
    kind: str,
    crash: str,
    final: RunStatus,
    charge_attempts: list[int],
    verifies: int,
) -> None:
    s = shop(kind)
    bound = s.saga().process.max_attempts_for(s.saga().process.step("charge"))
    assert bound == 3
    assert s.child("run", op=OP, crash=crash).killed
    store = s.store()
    for restart in range(1, bound + 1):
        at_death = store.load(OP)
        assert at_death.run.status is RunStatus.RUNNING, "no run is lost between crashes"
        assert at_death.step("charge").attempts == restart, "the count grows across restarts"
        last = s.child("recover", crash=crash, clock_offset=LATER * restart)
        if restart < bound:
            assert last.killed, f"restart {restart}: rc={last.returncode} {last.stderr}"
    assert last.report is not None, last.stderr
    assert last.report["recovered"] == [OP]
    assert last.report["status"] == [final.value]

    after = store.load(OP)
    assert after.step("charge").attempts == bound, "stopped at the bound"
    calls = s.ledger.select(step_id="charge", kind="call")
    assert [c.attempt for c in calls] == charge_attempts
    assert len({c.idempotency_key for c in calls}) <= 1
    assert len({c.pid for c in calls}) == len(calls), "each attempt by another process"
    assert len(s.ledger.select(step_id="charge", kind="verify")) == verifies
    assert s.violations(OP, alerts=last.alerts()) == []
