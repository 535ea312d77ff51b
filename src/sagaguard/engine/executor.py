"""The engine: starts, resumes and recovers runs, and applies a person's resolutions.

An :class:`Engine` is one owner. It claims a run (lease + fencing token) before acting on
it, drives it with :class:`~sagaguard.engine.runner.RunDriver` until it is terminal or needs
a person, and releases it. Its clock, sleep, store, fault injector and notifier are all
arguments, so tests drive time and crashes without patching anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from sagaguard.engine.alerts import LoggingNotifier, Notifier
from sagaguard.engine.calls import Call, ThreadCaller, call_async
from sagaguard.engine.faults import NO_FAULTS, FaultInjector
from sagaguard.engine.runner import Environment, RunDriver, RunGenerator
from sagaguard.engine.saga import Saga
from sagaguard.exceptions import (
    OperationConflictError,
    ResolutionError,
    RunBusyError,
    RunNotFoundError,
    StaleOwnerError,
)
from sagaguard.storage import DEFAULT_URL, JournalStore, open_store
from sagaguard.storage.base import (
    Claim,
    JSONValue,
    NewRun,
    RunSnapshot,
    RunStatus,
    StepChange,
    StepStatus,
    Transition,
)

logger = logging.getLogger("sagaguard.engine")


class Resolution(StrEnum):
    """What a person found when they looked at a step waiting for review."""

    COMPLETED = "completed"
    """The step's effect happened (give its result): the run continues forward."""
    NOT_APPLIED = "not_applied"
    """The effect did not happen: the step may be retried within its bound, else rolled back."""
    COMPENSATED = "compensated"
    """The effect was undone by hand: the rollback continues with the step before it."""


def default_owner() -> str:
    """A unique owner name: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Engine:
    """Runs sagas durably on a journal store (a local SQLite file by default)."""

    def __init__(
        self,
        *,
        store: JournalStore | str | None = None,
        sagas: Iterable[Saga] = (),
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        faults: FaultInjector = NO_FAULTS,
        owner: str | None = None,
        lease_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store if isinstance(store, JournalStore) else open_store(store or DEFAULT_URL)
        self._owns_store = not isinstance(store, JournalStore)
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self._clock = clock
        self._sleep = sleep
        self._env = Environment(
            store=self.store,
            clock=clock,
            faults=faults,
            notifier=notifier or LoggingNotifier(),
            lease_s=lease_s,
            rng=rng or random.Random(),
        )
        self._caller = ThreadCaller()
        self._sagas: dict[str, Saga] = {}
        for saga in sagas:
            self.register(saga)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, saga: Saga) -> Saga:
        """Make a saga resumable by this engine (``run`` registers its saga itself)."""
        saga.check_runnable()
        self._sagas[saga.process.name] = saga
        return saga

    # -- starting and resuming --------------------------------------------------------------

    def run(self, saga: Saga, *, operation_id: str, input: JSONValue = None) -> RunSnapshot:
        """Run ``saga`` under ``operation_id`` until it is terminal or needs a person.

        The same operation_id returns the existing run (resuming it if its owner died); a
        different input under it raises :class:`OperationConflictError`.
        """
        start = self._start(saga, operation_id, input)
        if isinstance(start, RunSnapshot):
            return start
        self._drive_sync(start)
        return self.store.load(operation_id)

    async def run_async(
        self,
        saga: Saga,
        *,
        operation_id: str,
        input: JSONValue = None,
    ) -> RunSnapshot:
        """The async twin of :meth:`run`: async steps run on the caller's event loop."""
        start = self._start(saga, operation_id, input)
        if isinstance(start, RunSnapshot):
            return start
        await self._drive_async(start)
        return self.store.load(operation_id)

    def resume(self, operation_id: str) -> RunSnapshot:
        """Continue a run whose owner is gone (or was this engine); terminal runs are returned."""
        snapshot = self.store.load(operation_id)
        if not snapshot.run.status.active:
            return snapshot
        saga = self._saga_for(snapshot)
        claim = self.store.claim(
            operation_id, owner=self.owner, now=self._clock(), lease_s=self.lease_s
        )
        self._drive_sync(self._driver(saga, claim))
        return self.store.load(operation_id)

    def recover(self, *, limit: int = 100) -> list[RunSnapshot]:
        """Resume up to ``limit`` active runs whose owner's lease expired; return what they became.

        Runs are claimed one at a time, just before they are driven, so no claim waits in a
        batch while its lease runs out. A run another owner takes over meanwhile is skipped
        (its write is fenced off), never fought over.
        """
        recovered: list[RunSnapshot] = []
        for _ in range(limit):
            claims = self.store.claim_expired(
                owner=self.owner, now=self._clock(), lease_s=self.lease_s, limit=1
            )
            if not claims:
                break
            claim = claims[0]
            snapshot = self.store.load(claim.operation_id)
            saga = self._sagas.get(snapshot.run.process)
            if saga is None or saga.process.version != snapshot.run.version:
                # Keep the claim: its lease expires and a worker that knows the saga takes it.
                logger.warning(
                    "run %s is a run of %s v%s, unknown to this engine: left for another worker",
                    claim.operation_id,
                    snapshot.run.process,
                    snapshot.run.version,
                )
                continue
            try:
                self._drive_sync(
                    RunDriver(env=self._env, saga=saga, claim=claim, snapshot=snapshot)
                )
            except StaleOwnerError:
                logger.warning(
                    "run %s was taken over by another owner; skipped", claim.operation_id
                )
                continue
            recovered.append(self.store.load(claim.operation_id))
        return recovered

    # -- manual review ----------------------------------------------------------------------

    def resolve(
        self,
        operation_id: str,
        *,
        step_id: str,
        outcome: Resolution | str,
        by: str,
        note: str,
        result: JSONValue = None,
        proceed: bool = True,
    ) -> RunSnapshot:
        """Apply a person's finding on a step that waits for review, then continue the run.

        Audited as a ``resolved`` event whose actor is ``review:<by>``. With ``proceed`` the
        run continues at once (forward or backward), which needs its saga registered.
        """
        outcome = Resolution(outcome)
        snapshot = self.store.load(operation_id)
        if snapshot.run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
            raise ResolutionError(
                f"run {operation_id} is {snapshot.run.status.value}, not needs_manual_review"
            )
        try:
            record = snapshot.step(step_id)
        except KeyError:
            raise ResolutionError(f"run {operation_id} has no step {step_id!r}") from None
        saga = self._sagas.get(snapshot.run.process)
        id_field = saga.process.step(step_id).external_id if saga is not None else None
        change, run_status = _resolution_change(
            step_id, record.status, outcome, result, snapshot, id_field
        )
        reviewer = f"review:{by}"
        claim = self.store.claim(
            operation_id, owner=reviewer, now=self._clock(), lease_s=self.lease_s
        )
        transition = Transition(
            kind="resolved",
            step=change,
            run_status=run_status,
            reason=f"{outcome.value} by {by}: {note}",
            run_reason=f"resolved {step_id} as {outcome.value} by {by}",
            data={"by": by, "note": note, "as": outcome.value, "result": result},
        )
        claim = self.store.record(claim, [transition], now=self._clock(), lease_s=self.lease_s)
        self.store.release(claim, now=self._clock())
        if proceed and snapshot.run.process in self._sagas:
            return self.resume(operation_id)
        return self.store.load(operation_id)

    # -- internals ----------------------------------------------------------------------------

    def _start(self, saga: Saga, operation_id: str, input: JSONValue) -> RunDriver | RunSnapshot:
        saga = self.register(saga)
        process = saga.process
        new = NewRun(
            operation_id=operation_id,
            process=process.name,
            version=process.version,
            input=input,
            step_ids=tuple(step.id for step in process.steps),
        )
        now = self._clock()
        created = self.store.create_run(new, owner=self.owner, now=now, lease_s=self.lease_s)
        if created.created:
            assert created.claim is not None
            return RunDriver(
                env=self._env, saga=saga, claim=created.claim, snapshot=created.snapshot
            )
        run = created.snapshot.run
        if run.version != process.version:
            raise OperationConflictError(
                f"operation_id {operation_id!r} is a run of {run.process} v{run.version}, "
                f"not v{process.version}"
            )
        lease_live = run.owner is not None and (run.lease_expires_at or 0.0) > now
        if not run.status.active or (lease_live and run.owner != self.owner):
            return created.snapshot
        try:
            claim = self.store.claim(operation_id, owner=self.owner, now=now, lease_s=self.lease_s)
        except RunBusyError:
            return self.store.load(operation_id)
        return self._driver(saga, claim)

    def _driver(self, saga: Saga, claim: Claim) -> RunDriver:
        return RunDriver(
            env=self._env, saga=saga, claim=claim, snapshot=self.store.load(claim.operation_id)
        )

    def _saga_for(self, snapshot: RunSnapshot) -> Saga:
        saga = self._sagas.get(snapshot.run.process)
        if saga is None:
            raise RunNotFoundError(
                f"run {snapshot.run.operation_id} is a run of {snapshot.run.process!r}, "
                "which is not registered with this engine"
            )
        return saga

    def _drive_sync(self, driver: RunDriver) -> None:
        generator: RunGenerator = driver.drive()
        try:
            request = next(generator)
            while True:
                if isinstance(request, Call):
                    request = generator.send(self._caller.call(request))
                else:
                    self._sleep(request.seconds)
                    request = generator.send(None)
        except StopIteration:
            return

    async def _drive_async(self, driver: RunDriver) -> None:
        generator: RunGenerator = driver.drive()
        try:
            request = next(generator)
            while True:
                if isinstance(request, Call):
                    request = generator.send(await call_async(request))
                else:
                    if self._sleep is time.sleep:
                        await asyncio.sleep(request.seconds)
                    else:
                        self._sleep(request.seconds)
                    request = generator.send(None)
        except StopIteration:
            return

    def close(self) -> None:
        """Stop the call pool and close the store if this engine opened it."""
        self._caller.close()
        if self._owns_store:
            self.store.close()


def _resolution_change(
    step_id: str,
    status: StepStatus,
    outcome: Resolution,
    result: Any,
    snapshot: RunSnapshot,
    external_id_field: str | None,
) -> tuple[StepChange, RunStatus]:
    """The step change and run status a resolution leads to, or ``ResolutionError``."""
    waiting_forward = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.UNKNOWN, StepStatus.STARTED)
    if status in waiting_forward:
        if outcome is Resolution.COMPLETED:
            seq = 1 + max((r.completed_seq or 0) for r in snapshot.steps)
            external = None
            if external_id_field and isinstance(result, dict) and result.get(external_id_field):
                external = str(result[external_id_field])
            return (
                StepChange(
                    step_id,
                    StepStatus.COMPLETED,
                    result=result,
                    external_id=external,
                    completed_seq=seq,
                    failure_reason="resolved by a person: completed",
                ),
                RunStatus.RUNNING,
            )
        if outcome is Resolution.NOT_APPLIED:
            return (
                StepChange(
                    step_id, StepStatus.FAILED, failure_reason="resolved by a person: not applied"
                ),
                RunStatus.RUNNING,
            )
        seq = 1 + max((r.completed_seq or 0) for r in snapshot.steps)
        return (
            StepChange(
                step_id,
                StepStatus.COMPENSATED,
                completed_seq=seq,
                failure_reason="resolved by a person: applied and undone by hand",
            ),
            RunStatus.COMPENSATING,
        )
    if status is StepStatus.COMPENSATION_FAILED:
        if outcome is Resolution.COMPENSATED:
            return (
                StepChange(step_id, StepStatus.COMPENSATED, failure_reason="compensated by hand"),
                RunStatus.COMPENSATING,
            )
        raise ResolutionError(
            f"step {step_id} failed to compensate: resolve it --as compensated once it is undone"
        )
    raise ResolutionError(
        f"step {step_id} is {status.value}: only a step waiting for review resolves"
    )
