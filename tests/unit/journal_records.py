"""Journal records built by hand, so an operator test pins how one field reaches a view;
and a store that counts the reads a view makes."""

from __future__ import annotations

from typing import Any

from sagaguard.storage.base import (
    Event,
    JournalStore,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StepStatus,
)

T0 = 1_750_000_000.25  # 2025-06-15T15:06:40.250Z


def run_record(status: RunStatus = RunStatus.NEEDS_MANUAL_REVIEW, **changes: Any) -> RunRecord:
    """A run of the checkout, waiting for review unless told otherwise."""
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "process": "checkout",
        "version": "2",
        "input": {"order": {"total_cents": 100}},
        "input_hash": "abc",
        "status": status,
        "owner": None,
        "lease_expires_at": None,
        "fencing_token": 3,
        "created_at": T0,
        "updated_at": T0 + 1.5,
        "reason": "charge_payment: verify could not tell",
    }
    return RunRecord(**(values | changes))


def step_record(step_id: str, status: StepStatus, position: int = 0, **changes: Any) -> StepRecord:
    """A step of that run."""
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "step_id": step_id,
        "position": position,
        "status": status,
        "attempts": 1,
        "last_attempt_at": T0,
        "idempotency_key": f"order-7:{step_id}",
        "external_id": None,
        "result": None,
        "failure_reason": None,
        "compensation_attempts": 0,
        "completed_seq": None,
    }
    return StepRecord(**(values | changes))


def event(seq: int, kind: str, step_id: str | None = None, **changes: Any) -> Event:
    """An event of that run's audit trail."""
    values: dict[str, Any] = {
        "operation_id": "order-7",
        "seq": seq,
        "at": T0 + seq,
        "actor": "worker-1",
        "kind": kind,
        "step_id": step_id,
        "from_status": None,
        "to_status": None,
        "reason": None,
        "data": None,
    }
    return Event(**(values | changes))


def snapshot(status: RunStatus, *steps: tuple[str, StepStatus], **changes: Any) -> RunSnapshot:
    """A run with the given steps (id, status) in process order."""
    return RunSnapshot(
        run=run_record(status, **changes),
        steps=tuple(step_record(sid, st, n) for n, (sid, st) in enumerate(steps)),
    )


class CountingStore:
    """A store that notes the name of every call made through it (to pin how many reads)."""

    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.reads.append(name)
        return getattr(self.store, name)
