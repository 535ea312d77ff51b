"""The engine: starts, resumes and recovers runs, and applies a person's resolutions.

An :class:`Engine` is one owner. It claims a run (lease + fencing token) before acting on
it, drives it with :class:`~sagaguard.engine.runner.RunDriver` until it is terminal or needs
a person, and releases it. Its clock, sleep, store, fault injector and notifier are all
arguments, so tests drive time and crashes without patching anything.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from sagaguard.bounds import BATCH, CALL_THREADS, LEASE, WAIT
from sagaguard.engine.abandoned import Abandoned
from sagaguard.engine.alerts import LoggingNotifier, Notifier
from sagaguard.engine.calls import Caller, ThreadCaller
from sagaguard.engine.checks import (
    check_same_steps,
    refuse_inside_loop,
    run_request,
)
from sagaguard.engine.driving import Holds, Pump
from sagaguard.engine.faults import NO_FAULTS, FaultInjector
from sagaguard.engine.handing_back import HandedBack, hand_back
from sagaguard.engine.heartbeat import Heartbeats
from sagaguard.engine.outbox import deliver_due
from sagaguard.engine.resolution import Resolution
from sagaguard.engine.results import Encounter, RunResult
from sagaguard.engine.reviewing import apply_resolution
from sagaguard.engine.runner import Environment, RunDriver, RunExists
from sagaguard.engine.saga import Saga
from sagaguard.engine.starting import Starts
from sagaguard.exceptions import (
    RunBusyError,
    RunNotFoundError,
    SagaDefinitionError,
    StaleOwnerError,
)
from sagaguard.storage import DEFAULT_URL, JournalStore, open_store
from sagaguard.storage.base import Claim, RunSnapshot, RunStatus
from sagaguard.storage.payloads import JSONValue

logger = logging.getLogger("sagaguard.engine")


def default_owner() -> str:
    """A fresh worker incarnation id, ``<16 hex>@host:pid``: one per engine, never reused.

    The random part is the identity; host and pid are only there for people reading the
    journal. Host and pid alone get reused: a pod restarted under the same name, or a pid
    the system hands out again, would find its dead predecessor's runs "still owned" by
    itself and never take them over (procrastinate#1518).
    """
    return f"{uuid.uuid4().hex[:16]}@{socket.gethostname()}:{os.getpid()}"


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
        # Checked before the store is opened: bad numbers leave nothing behind.
        LEASE.require(lease_s, "lease_s")
        CALL_THREADS.require(call_threads, "call_threads")
        self.store = store if isinstance(store, JournalStore) else open_store(store or DEFAULT_URL)
        self._owns_store = not isinstance(store, JournalStore)
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self._clock = clock
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
        self._holds = Holds()
        self._abandoned = Abandoned()
        self._heartbeats = Heartbeats(
            store=self.store, clock=clock, lease_s=lease_s, owner=self.owner
        )
        self._pump = Pump(
            caller=self._caller,
            sleep=sleep,
            sleep_is_real=sleep is time.sleep,
            abandoned=self._abandoned,
            heartbeats=self._heartbeats,
            injected=caller,
        )
        self._starts = Starts(
            env=self._env,
            holds=self._holds,
            abandoned=self._abandoned,
            owner=self.owner,
            register=self.register,
        )
        self._sagas: dict[tuple[str, str], Saga] = {}
        self._lock = threading.Lock()
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

    def run(
        self, saga: Saga, *, operation_id: str, input: JSONValue = None, wait_s: float = 0.0
    ) -> RunSnapshot:
        """Run ``saga`` under ``operation_id`` until it is terminal or needs a person.

        The same operation_id returns the existing run (resuming it if its owner died); a
        different input under it raises :class:`OperationConflictError`.
        :meth:`run_detailed` also says which of these this call did.

        A call of this engine that an earlier caller gave up on (Ctrl-C, a cancelled task)
        and that has not returned is *in flight*: nobody verifies or repeats it, and the run
        is returned as it stands, still ``running``. ``wait_s`` waits up to that long for
        such a call first; once it returned, its outcome is journaled and the run goes on.

        Inside a running
        event loop a saga with async steps is refused (``EngineUsageError``) before anything
        is journaled: its steps belong on that loop, through :meth:`run_async`.
        """
        return self.run_detailed(
            saga, operation_id=operation_id, input=input, wait_s=wait_s
        ).snapshot

    def run_detailed(
        self, saga: Saga, *, operation_id: str, input: JSONValue = None, wait_s: float = 0.0
    ) -> RunResult:
        """:meth:`run`, saying also whether this call created, resumed or joined the run."""
        refuse_inside_loop(saga, "run")
        if WAIT.require(wait_s, "wait_s") and self._abandoned.busy(operation_id):
            self._abandoned.wait(operation_id, wait_s)
        start = self._starts.start(saga, operation_id, input)
        if isinstance(start, RunResult):
            return start
        found: RunStatus | None = None
        try:
            try:
                self._pump.drive(start)
            except RunExists as exists:
                joined = self._starts.join(saga, exists)
                if isinstance(joined, RunResult):
                    return joined
                found = exists.snapshot.run.status
                self._pump.drive(joined)
        finally:
            self._holds.leave(operation_id)
        return self._driven(operation_id, found)

    async def run_async(
        self, saga: Saga, *, operation_id: str, input: JSONValue = None, wait_s: float = 0.0
    ) -> RunSnapshot:
        """The async twin of :meth:`run`: async steps run on the caller's event loop.

        A task cancelled during a sync step (``asyncio.wait_for`` around it) leaves that
        call in flight, exactly as a Ctrl-C does for :meth:`run`.
        """
        result = await self.run_detailed_async(
            saga, operation_id=operation_id, input=input, wait_s=wait_s
        )
        return result.snapshot

    async def run_detailed_async(
        self, saga: Saga, *, operation_id: str, input: JSONValue = None, wait_s: float = 0.0
    ) -> RunResult:
        """:meth:`run_async`, saying also how this call met the run (as :meth:`run_detailed`)."""
        if WAIT.require(wait_s, "wait_s") and self._abandoned.busy(operation_id):
            await self._abandoned.wait_async(operation_id, wait_s)
        start = self._starts.start(saga, operation_id, input)
        if isinstance(start, RunResult):
            return start
        found: RunStatus | None = None
        try:
            try:
                await self._pump.drive_async(start)
            except RunExists as exists:
                joined = self._starts.join(saga, exists)
                if isinstance(joined, RunResult):
                    return joined
                found = exists.snapshot.run.status
                await self._pump.drive_async(joined)
        finally:
            self._holds.leave(operation_id)
        return self._driven(operation_id, found)

    def submit(self, saga: Saga, *, operation_id: str, input: JSONValue = None) -> RunResult:
        """Journal a run of ``saga`` without running it, and return at once.

        The run is created unowned, so the next claim of any worker that has the saga takes
        it (idle workers are woken: LISTEN/NOTIFY on PostgreSQL). The same request again
        returns the existing run (joined or recorded); another input, process or version
        under the operation id raises :class:`OperationConflictError`, as for :meth:`run`.
        """
        new = run_request(saga, operation_id, input)
        created = self.store.create_run(new, owner=None, now=self._clock(), lease_s=self.lease_s)
        self.register(saga)
        if created.created:
            return RunResult(created.snapshot, Encounter.CREATED)
        return RunResult.existing(created.snapshot)

    def resume(self, operation_id: str, *, wait_s: float = 0.0) -> RunSnapshot:
        """Continue a run whose owner is gone (or was this engine); terminal runs are returned.

        A run this engine is driving right now, or whose call is in flight (see :meth:`run`,
        and ``wait_s``), is returned as it stands.
        """
        if WAIT.require(wait_s, "wait_s") and self._abandoned.busy(operation_id):
            self._abandoned.wait(operation_id, wait_s)
        snapshot = self.store.load(operation_id)
        if not snapshot.run.status.active:
            return snapshot
        saga = self._saga_for(snapshot)
        refuse_inside_loop(saga, "resume")
        check_same_steps(saga, snapshot)
        if not self._holds.enter(operation_id):
            return self.store.load(operation_id)
        try:
            if self._abandoned.busy(operation_id):
                return self.store.load(operation_id)
            claim = self.store.claim(
                operation_id, owner=self.owner, now=self._clock(), lease_s=self.lease_s
            )
            self._holds.started(operation_id)
            self._pump.drive(self._starts.driver(saga, claim))
        finally:
            self._holds.leave(operation_id)
        return self.store.load(operation_id)

    def hand_back(self, operation_id: str, *, wait_s: float) -> HandedBack:
        """Journal what the calls of an interrupted ``run`` told, then release the run.

        Waits up to ``wait_s`` for them and calls nothing more, so a worker or a rerun goes
        on at once; a call still running keeps the lease (:mod:`.handing_back` says why).
        """
        return hand_back(
            operation_id,
            wait_s=WAIT.require(wait_s, "wait_s"),
            env=self._env,
            owner=self.owner,
            holds=self._holds,
            abandoned=self._abandoned,
            sagas=self._sagas,
        )

    async def hand_back_async(self, operation_id: str, *, wait_s: float) -> HandedBack:
        """:meth:`hand_back` after a cancelled :meth:`run_async`: the loop runs as it waits."""
        await self._abandoned.wait_async(operation_id, WAIT.require(wait_s, "wait_s"))
        return self.hand_back(operation_id, wait_s=0.0)

    def recover(
        self, *, limit: int = 100, stop: Callable[[], bool] = lambda: False
    ) -> list[RunSnapshot]:
        """Resume up to ``limit`` active runs whose owner's lease expired; return what they became.

        Sequential: runs are claimed one at a time, just before they are driven, so no claim
        waits while its lease runs out (:class:`~sagaguard.engine.worker.Worker` drives many
        at once). A run another owner takes over meanwhile is skipped (its write is fenced
        off), never fought over. ``stop`` is asked before each run: a worker told to shut
        down finishes the run in hand and takes no other.
        """
        BATCH.require(limit, "limit")
        recovered: list[RunSnapshot] = []
        for _ in range(limit):
            if stop():
                break
            claims = self.claim_runs(1)
            if not claims:
                break
            snapshot = self.drive_claim(claims[0])
            if snapshot is not None:
                recovered.append(snapshot)
        return recovered

    def claim_runs(self, limit: int) -> list[Claim]:
        """Claim up to ``limit`` unowned active runs (submitted, released, or whose lease ran out).

        Only runs of sagas registered here, by process and version: a run this engine could
        not drive is left for a worker that has its saga, never claimed (again) on each pass.
        """
        BATCH.require(limit, "limit")
        with self._lock:
            processes = tuple(self._sagas)
        return self.store.claim_expired(
            owner=self.owner,
            now=self._clock(),
            lease_s=self.lease_s,
            limit=limit,
            processes=processes,
        )

    def drive_claim(self, claim: Claim) -> RunSnapshot | None:
        """Drive a run claimed by :meth:`claim_runs` until it stops; what it became.

        ``None`` when the run was left alone (its saga changed under its version, this
        engine is driving it already, or another owner took it over meanwhile): logged, and
        the claim is kept, so its lease runs out and the run is taken up again.
        """
        if self.drive_until_stop(claim) is None:
            return None
        return self.store.load(claim.operation_id)

    def drive_until_stop(self, claim: Claim) -> RunStatus | None:
        """:meth:`drive_claim` without its last read: the status the run stopped in.

        For a worker, which only logs it: one journal read fewer per run.
        """
        op = claim.operation_id
        snapshot = self.store.load(op)
        try:
            saga = self._saga_for(snapshot)
            check_same_steps(saga, snapshot)
        except (RunNotFoundError, SagaDefinitionError) as exc:
            # Keep the claim: its lease runs out and a worker that has the saga takes it.
            logger.error("%s; left for a worker that knows it", exc)
            return None
        if not self._holds.enter(op):
            # Its lease ran out while a call of this engine still drives it: that drive
            # is now fenced off; the run is taken up again once this claim expires.
            logger.warning("run %s is still being driven here; skipped", op)
            return None
        try:
            self._holds.started(op)
            if self._abandoned.busy(op):
                # A call of this engine whose caller gave up still runs: not verified blind.
                logger.warning("run %s has a call in flight in this process; skipped", op)
                return None
            returned = self._abandoned.take(op)
            driver = RunDriver(
                env=self._env, saga=saga, claim=claim, snapshot=snapshot, returned=returned
            )
            self._pump.drive(driver)
        except StaleOwnerError:
            logger.warning("run %s was taken over by another owner; skipped", op)
            return None
        finally:
            self._holds.leave(op)
        return driver.run.status

    def deliver_alerts(self, *, limit: int = 100) -> int:
        """Deliver outbox alerts that are due (their raiser failed or died); returns how many.

        Safe to call from many workers at once: each alert is taken by one of them at a time.
        """
        BATCH.require(limit, "limit")
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
        run continues at once (forward or backward), which needs its saga registered; if
        another owner claims it first, the run is returned as that owner holds it.
        """
        snapshot = apply_resolution(
            self.store,
            operation_id,
            step_id=step_id,
            outcome=Resolution(outcome),
            by=by,
            note=note,
            result=result,
            saga=self._registered(operation_id),
            clock=self._clock,
            lease_s=self.lease_s,
        )
        key = (snapshot.run.process, snapshot.run.version)
        if not proceed or key not in self._sagas:
            return snapshot
        try:
            return self.resume(operation_id)
        except RunBusyError:
            # A worker claimed the run between the resolution's commit and this claim: the
            # resolution is journaled and that worker carries the run on. Still a success.
            return self.store.load(operation_id)

    # -- internals ----------------------------------------------------------------------------

    def _registered(self, operation_id: str) -> Saga | None:
        run = self.store.load(operation_id).run
        return self._sagas.get((run.process, run.version))

    def _driven(self, operation_id: str, found: RunStatus | None) -> RunResult:
        """The run this call drove: created by it, or resumed when it was ``found`` so."""
        encounter = Encounter.CREATED if found is None else Encounter.RESUMED
        return RunResult(self.store.load(operation_id), encounter, found=found)

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

    def close(self) -> None:
        """Stop the heartbeat thread and the call pool; close the store if this engine opened it."""
        self._heartbeats.close()
        self._caller.close()
        if self._owns_store:
            self.store.close()
