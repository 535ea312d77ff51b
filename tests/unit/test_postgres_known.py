"""What a PostgreSQL store knows of the runs it holds: learned, followed, forgotten, bounded.

Knowledge that is wrong is refused by the server's check (the integration tests show it);
these pin that the store does not keep knowledge it has reason to doubt.
"""

from __future__ import annotations

import dataclasses

import pytest
from tests.unit.journal_records import run_record, step_record

from sagaguard.storage.base import Claim, RunSnapshot, RunStatus, StepChange, StepStatus
from sagaguard.storage.postgres_known import KnownRuns
from sagaguard.storage.postgres_transaction import ServerTime, resolved
from sagaguard.storage.rows import RunState, StepWrite

pytest.importorskip("psycopg")


def _held(op: str = "order-7", token: int = 3, owner: str = "w") -> RunSnapshot:
    run = run_record(RunStatus.RUNNING, operation_id=op, owner=owner, fencing_token=token)
    steps = (
        step_record("reserve", StepStatus.COMPLETED),
        step_record("charge", StepStatus.PENDING, 1),
    )
    return RunSnapshot(run=run, steps=tuple(dataclasses.replace(s, operation_id=op) for s in steps))


def _claim(op: str = "order-7", token: int = 3, owner: str = "w") -> Claim:
    return Claim(op, owner, token, 0.0)


def test_a_held_run_is_known_to_its_claim_only() -> None:
    known = KnownRuns()
    known.learn(_held(), last_seq=9)
    found = known.of(_claim())
    assert found is not None
    assert found.state.last_seq == 9
    assert found.steps == {"reserve": StepStatus.COMPLETED, "charge": StepStatus.PENDING}
    assert known.of(_claim(token=4)) is None
    assert known.of(_claim(owner="other")) is None


def test_an_unowned_or_finished_run_is_not_kept() -> None:
    known = KnownRuns()
    known.learn(_held(), last_seq=9)
    unowned = _held()
    known.learn(dataclasses.replace(unowned, run=dataclasses.replace(unowned.run, owner=None)), 10)
    assert len(known) == 0
    done = _held()
    known.learn(
        dataclasses.replace(done, run=dataclasses.replace(done.run, status=RunStatus.COMPLETED)), 3
    )
    assert len(known) == 0


def test_a_write_is_followed_only_from_the_state_known_and_a_release_forgets() -> None:
    known = KnownRuns()
    known.learn(_held(), last_seq=9)
    before = known.of(_claim())
    assert before is not None
    after = dataclasses.replace(before.state, last_seq=10)
    charge = StepWrite("charge", StepChange("charge", StepStatus.STARTED), None)
    known.wrote("order-7", before.state, after, [charge])
    now = known.of(_claim())
    assert now is not None
    assert now.state.last_seq == 10
    assert now.steps["charge"] is StepStatus.STARTED
    known.wrote(
        "order-7", before.state, dataclasses.replace(after, last_seq=11), []
    )  # seq 9 is gone
    assert known.of(_claim()) is None
    known.learn(_held(), last_seq=9)
    released = RunState(RunStatus.RUNNING, None, None, None, 3, 0.0, 10)
    known.wrote("order-7", before.state, released, [])
    assert known.of(_claim()) is None


def test_at_most_limit_runs_are_known_the_longest_unwritten_go_first() -> None:
    known = KnownRuns(limit=2)
    for op in ("a", "b", "c"):
        known.learn(_held(op), last_seq=1)
    assert len(known) == 2
    assert known.of(_claim("a")) is None
    assert known.of(_claim("c")) is not None


def test_a_server_time_adds_as_an_offset_and_resolves_once_received() -> None:
    lease = ServerTime(0.0) + 30.0
    assert isinstance(lease, ServerTime)
    assert resolved(lease, 1_000.0) == 1_030.0
    assert resolved(2.5, 1_000.0) == 2.5
    assert resolved(None, 1_000.0) is None
    assert "statement_timestamp()" in lease.literal()
    with pytest.raises(TypeError, match="cannot be ordered"):
        assert lease > 1_000.0


def test_a_claims_read_is_served_once_while_fresh_and_never_after_a_drop() -> None:
    from sagaguard.storage.postgres_known import ClaimedReads

    reads = ClaimedReads(fresh_s=60.0, limit=2)
    reads.keep([(_held("a"), 4), (_held("b"), 5)])
    assert reads.take("a") == (_held("a"), 4)
    assert reads.take("a") is None, "once"
    reads.drop("b")
    assert reads.take("b") is None
    reads.keep([(_held("c"), 1), (_held("d"), 1), (_held("e"), 1)])
    assert reads.take("c") is None, "the oldest goes past the limit"
    assert reads.take("e") is not None
    stale = ClaimedReads(fresh_s=-1.0)
    stale.keep([(_held("a"), 4)])
    assert stale.take("a") is None, "too old to stand for a load"
    stale.keep([(_held("b"), 1)])
    stale.keep([(_held("c"), 1)])
    assert len(stale._reads) == 1, "a read no load took is let go at the next claim"
