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
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from sagaguard.engine.alerts import LoggingNotifier, Notifier
from sagaguard.engine.calls import Call, Caller, Outcome, ThreadCaller
from sagaguard.engine.faults import NO_FAULTS, FaultInjector
from sagaguard.engine.outbox import deliver_due
from sagaguard.engine.resolution import Resolution, resolution_change
from sagaguard.engine.runner import Environment, RunDriver, RunExists, RunGenerator
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
    Transition,
)

logger = logging.getLogger("sagaguard.engine")


def default_owner() -> str:
    """A unique owner name: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Engine:
    """Runs sagas durably on a journal store (a local SQLite file by default).

    One engine may be shared by many threads. It drives each run from one place at a time:
    a second ``run`` of an operation id this engine is already driving returns the run as it
    stands instead of claiming it again (the lease is the engine's, so the store alone could
    not tell the two callers apart).
    """

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
        call_threads: int = 32,
        caller: Caller | None = None,
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
        # Sync steps run on these threads so a timeout can stop the wait (not the call).
        self._caller = ThreadCaller(max_workers=call_threads)
        self._injected = caller
        """A caller given by the user (the fault harness's): it makes every call instead."""
        self._sagas: dict[tuple[str, str], Saga] = {}
        self._lock = threading.Lock()
        self._driving: dict[str, threading.Event] = {}
        """Runs this engine is starting or driving; each event is set once the start is over."""
        for saga in sagas:
            self.register(saga)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, saga: Saga) -> Saga:
        """Make a saga resumable by this engine (``run`` registers its saga itself).

        Sagas are kept by process name and version, so one worker can finish the runs of
        an older version while new runs start on the new one.
        """
        saga.check_runnable()
        with self._lock:
            self._sagas[(saga.process.name, saga.process.version)] = saga
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
        try:
            try:
                self._drive_sync(start)
            except RunExists as exists:
                joined = self._join(saga, exists)
                if isinstance(joined, RunSnapshot):
                    return joined
                self._drive_sync(joined)
        finally:
            self._leave(operation_id)
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
        try:
            try:
                await self._drive_async(start)
            except RunExists as exists:
                joined = self._join(saga, exists)
                if isinstance(joined, RunSnapshot):
                    return joined
                await self._drive_async(joined)
        finally:
            self._leave(operation_id)
        return self.store.load(operation_id)

    def resume(self, operation_id: str) -> RunSnapshot:
        """Continue a run whose owner is gone (or was this engine); terminal runs are returned.

        A run this engine is driving right now is returned as it stands.
        """
        snapshot = self.store.load(operation_id)
        if not snapshot.run.status.active:
            return snapshot
        saga = self._saga_for(snapshot)
        if not self._enter(operation_id):
            return self.store.load(operation_id)
        try:
            claim = self.store.claim(
                operation_id, owner=self.owner, now=self._clock(), lease_s=self.lease_s
            )
            self._started(operation_id)
            self._drive_sync(self._driver(saga, claim))
        finally:
            self._leave(operation_id)
        return self.store.load(operation_id)

    def recover(
        self, *, limit: int = 100, stop: Callable[[], bool] = lambda: False
    ) -> list[RunSnapshot]:
        """Resume up to ``limit`` active runs whose owner's lease expired; return what they became.

        Runs are claimed one at a time, just before they are driven, so no claim waits in a
        batch while its lease runs out. A run another owner takes over meanwhile is skipped
        (its write is fenced off), never fought over. ``stop`` is asked before each run: a
        worker told to shut down finishes the run in hand and takes no other.
        """
        recovered: list[RunSnapshot] = []
        for _ in range(limit):
            if stop():
                break
            claims = self.store.claim_expired(
                owner=self.owner, now=self._clock(), lease_s=self.lease_s, limit=1
            )
            if not claims:
                break
            claim = claims[0]
            snapshot = self.store.load(claim.operation_id)
            saga = self._sagas.get((snapshot.run.process, snapshot.run.version))
            if saga is None:
                # Keep the claim: its lease expires and a worker that knows the saga takes it.
                logger.warning(
                    "run %s is a run of %s v%s, unknown to this engine: left for another worker",
                    claim.operation_id,
                    snapshot.run.process,
                    snapshot.run.version,
                )
                continue
            if not self._enter(claim.operation_id):
                # Its lease ran out while a call of this engine still drives it: that drive
                # is now fenced off; the run is taken up again once this claim expires.
                logger.warning("run %s is still being driven here; skipped", claim.operation_id)
                continue
            try:
                self._started(claim.operation_id)
                self._drive_sync(
                    RunDriver(env=self._env, saga=saga, claim=claim, snapshot=snapshot)
                )
            except StaleOwnerError:
                logger.warning(
                    "run %s was taken over by another owner; skipped", claim.operation_id
                )
                continue
            finally:
                self._leave(claim.operation_id)
            recovered.append(self.store.load(claim.operation_id))
        return recovered

    def deliver_alerts(self, *, limit: int = 100) -> int:
        """Deliver outbox alerts that are due (their raiser failed or died); returns how many.

        Safe to call from many workers at once: each alert is taken by one of them at a time.
        """
        return deliver_due(
            self.store, self._env.notifier, clock=self._clock, lease_s=self.lease_s, limit=limit
        )

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
        # Checked before the claim (a plain mistake journals nothing) and again under it.
        self._resolution(self.store.load(operation_id), step_id, outcome, result)
        claim = self.store.claim(
            operation_id, owner=f"review:{by}", now=self._clock(), lease_s=self.lease_s
        )
        try:
            # Read under the claim: a resolution that raced this one is seen, or fenced off.
            snapshot = self.store.load(operation_id)
            change, run_status = self._resolution(snapshot, step_id, outcome, result)
        except BaseException:
            self.store.release(claim, now=self._clock())
            raise
        transition = Transition(
            kind="resolved",
            step=change,
            run_status=run_status,
            reason=f"{outcome.value} by {by}: {note}",
            run_reason=f"resolved {step_id} as {outcome.value} by {by}",
            data={"by": by, "note": note, "as": outcome.value, "result": result},
        )
        self.store.record(
            claim, [transition], now=self._clock(), lease_s=self.lease_s, release=True
        )
        key = (snapshot.run.process, snapshot.run.version)
        if proceed and key in self._sagas:
            return self.resume(operation_id)
        return self.store.load(operation_id)

    # -- internals ----------------------------------------------------------------------------

    def _resolution(
        self, snapshot: RunSnapshot, step_id: str, outcome: Resolution, result: JSONValue
    ) -> tuple[StepChange, RunStatus]:
        run = snapshot.run
        if run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
            raise ResolutionError(
                f"run {run.operation_id} is {run.status.value}, not needs_manual_review"
            )
        try:
            record = snapshot.step(step_id)
        except KeyError:
            raise ResolutionError(f"run {run.operation_id} has no step {step_id!r}") from None
        id_field = record.external_id_field
        saga = self._sagas.get((run.process, run.version))
        if id_field is None and saga is not None:  # a run journaled before the field existed
            id_field = saga.process.step(step_id).external_id
        return resolution_change(record, outcome, result, snapshot, id_field)

    def _start(self, saga: Saga, operation_id: str, input: JSONValue) -> RunDriver | RunSnapshot:
        """A driver that creates the run (this call then holds it), or the run as it stands.

        The driver creates the run with its first commit; if the run exists already it raises
        ``RunExists`` before calling anything, and :meth:`_join` takes over.
        """
        saga.check_runnable()
        process = saga.process
        new = NewRun(
            operation_id=operation_id,
            process=process.name,
            version=process.version,
            input=input,
            step_ids=tuple(step.id for step in process.steps),
            external_id_fields={s.id: s.external_id for s in process.steps if s.external_id},
        )
        while not self._enter(operation_id):
            # A duplicate request while a call of this engine starts or drives the run.
            with self._lock:
                gate = self._driving.get(operation_id)
            if gate is None:
                continue  # that call has just let go: try to hold the run ourselves
            gate.wait()
            with self._lock:
                still_held = self._driving.get(operation_id) is gate
            if still_held:
                # The holder's start is over, so the run is journaled: only compare.
                snapshot = self.store.load(operation_id)
                _check_same_request(new, snapshot)
                return snapshot
        now = self._clock()

        def created() -> None:
            self.register(saga)
            self._started(operation_id)

        return RunDriver(
            env=self._env,
            saga=saga,
            claim=Claim(operation_id, self.owner, 1, now + self.lease_s),
            snapshot=new.snapshot(owner=self.owner, now=now, lease_s=self.lease_s),
            new_run=new,
            on_created=created,
        )

    def _join(self, saga: Saga, exists: RunExists) -> RunDriver | RunSnapshot:
        """The run existed: drive it if it is unfinished and nobody live holds it."""
        try:
            _check_same_request(exists.new_run, exists.snapshot)
            joined = self._take_existing(saga, exists.snapshot)
            if isinstance(joined, RunDriver):
                self.register(saga)
            return joined
        finally:
            self._started(exists.new_run.operation_id)

    def _take_existing(self, saga: Saga, snapshot: RunSnapshot) -> RunDriver | RunSnapshot:
        """Claim an existing run to drive it, unless it is over or a live owner holds it."""
        run = snapshot.run
        now = self._clock()
        lease_live = run.owner is not None and (run.lease_expires_at or 0.0) > now
        if not run.status.active or (lease_live and run.owner != self.owner):
            return snapshot
        try:
            claim = self.store.claim(
                run.operation_id, owner=self.owner, now=now, lease_s=self.lease_s
            )
        except RunBusyError:
            return self.store.load(run.operation_id)
        return self._driver(saga, claim)

    def _enter(self, operation_id: str) -> bool:
        """Hold the run for this call; False when another call of this engine holds it."""
        with self._lock:
            if operation_id in self._driving:
                return False
            self._driving[operation_id] = threading.Event()
            return True

    def _started(self, operation_id: str) -> None:
        """The holder's start is over: duplicate requests may now read the run."""
        with self._lock:
            gate = self._driving.get(operation_id)
        if gate is not None:
            gate.set()

    def _leave(self, operation_id: str) -> None:
        with self._lock:
            gate = self._driving.pop(operation_id, None)
        if gate is not None:
            gate.set()

    def _driver(self, saga: Saga, claim: Claim) -> RunDriver:
        return RunDriver(
            env=self._env, saga=saga, claim=claim, snapshot=self.store.load(claim.operation_id)
        )

    def _saga_for(self, snapshot: RunSnapshot) -> Saga:
        run = snapshot.run
        saga = self._sagas.get((run.process, run.version))
        if saga is None:
            known = sorted(v for name, v in self._sagas if name == run.process)
            also = f" (this engine has v{', v'.join(known)})" if known else ""
            raise RunNotFoundError(
                f"run {run.operation_id} is a run of {run.process!r} v{run.version}, "
                f"which is not registered with this engine{also}"
            )
        return saga

    def _drive_sync(self, driver: RunDriver) -> None:
        generator: RunGenerator = driver.drive()
        try:
            request = next(generator)
            while True:
                if isinstance(request, Call):
                    request = generator.send(self._call(request))
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
                    if self._injected is not None:
                        # One method: an injected caller is sync, as a transport's handler is.
                        request = generator.send(self._injected.call(request))
                    else:
                        request = generator.send(await self._caller.call_async(request))
                else:
                    if self._sleep is time.sleep:
                        await asyncio.sleep(request.seconds)
                    else:
                        self._sleep(request.seconds)
                    request = generator.send(None)
        except StopIteration:
            return

    def _call(self, request: Call) -> Outcome:
        caller: Caller = self._injected if self._injected is not None else self._caller
        return caller.call(request)

    def close(self) -> None:
        """Stop the call pool and close the store if this engine opened it."""
        self._caller.close()
        if self._owns_store:
            self.store.close()


def _check_same_request(new: NewRun, snapshot: RunSnapshot) -> None:
    """``OperationConflictError`` unless the journaled run is the run ``new`` asks for."""
    run = snapshot.run
    if (run.process, run.input_hash) != (new.process, new.input_hash):
        raise OperationConflictError(
            f"operation {new.operation_id!r} already exists for process {run.process!r} "
            "with a different input or process"
        )
    if run.version != new.version:
        raise OperationConflictError(
            f"operation_id {new.operation_id!r} is a run of {run.process} v{run.version}, "
            f"not v{new.version}"
        )
