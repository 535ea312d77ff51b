"""A resolution that a worker overtakes right after it was journaled is still a success."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sagaguard.engine import Engine
from sagaguard.storage import Claim, JournalStore, RunStatus, StepStatus, Transition
from tests.behaviour.sagas import FakeClock, Provider, checkout


class AfterRelease:
    """A store that runs ``then`` right after the first write that releases a run."""

    def __init__(self, inner: JournalStore, then: Callable[[], None]) -> None:
        self._inner = inner
        self._then: Callable[[], None] | None = then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def record(self, claim: Claim, transitions: Sequence[Transition], **options: Any) -> Claim:
        written = self._inner.record(claim, transitions, **options)
        then, self._then = self._then, None
        if options.get("release") and then is not None:
            then()
        return written


def test_a_resolution_a_worker_claims_first_reports_success(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("charge_payment", "timeout_applied")
    saga = checkout(provider, payment_verify=False)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="first") as first:
        assert first.run(saga, operation_id="op-r").run.status is RunStatus.NEEDS_MANUAL_REVIEW

    claimed: list[int] = []

    def worker_claims() -> None:
        claim = store.claim("op-r", owner="worker", now=clock(), lease_s=60)
        claimed.append(claim.fencing_token)

    racing = AfterRelease(store, worker_claims)
    with Engine(
        store=racing,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        owner="ann",
        sagas=[saga],
    ) as ann:
        snapshot = ann.resolve(
            "op-r",
            step_id="charge_payment",
            outcome="completed",
            by="ann",
            note="charge found at the provider",
            result={"charge_payment_id": "ch-1"},
        )

    assert claimed, "the worker claimed the run between the resolution and its continuation"
    assert snapshot.step("charge_payment").status is StepStatus.COMPLETED
    assert snapshot.run.status is RunStatus.RUNNING
    assert snapshot.run.owner == "worker", "the worker carries the run on"
    resolved = [e for e in store.events("op-r") if e.kind == "resolved"]
    assert len(resolved) == 1
