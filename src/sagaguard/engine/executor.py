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

from sagaguard.bounds import BATCH, CALL_THREADS, LEASE, WAIT
from sagaguard.engine.abandoned import Abandoned
from sagaguard.engine.alerts import LoggingNotifier, Notifier
from sagaguard.engine.calls import Caller, ThreadCaller
from sagaguard.engine.driving import Holds, Pump
from sagaguard.engine.faults import NO_FAULTS, FaultInjector
from sagaguard.engine.handing_back import HandedBack, hand_back
from sagaguard.engine.heartbeat import Heartbeats
from sagaguard.engine.outbox import deliver_due
from sagaguard.engine.resolution import Resolution
from sagaguard.engine.reviewing import apply_resolution
from sagaguard.engine.runner import Environment, RunDriver, RunExists
from sagaguard.engine.saga import Saga
from sagaguard.exceptions import (
    EngineUsageError,
    RunBusyError,
    RunNotFoundError,
    SagaDefinitionError,
    StaleOwnerError,
)
from sagaguard.storage import DEFAULT_URL, JournalStore, journal, open_store
from sagaguard.storage.base import Claim, JSONValue, NewRun, RunSnapshot

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

        A call of this engine that an earlier caller gave up on (Ctrl-C, a cancelled task)
        and that has not returned is *in flight*: nobody verifies or repeats it, and the run
        is returned as it stands, still ``running``. ``wait_s`` waits up to that long for
        such a call first; once it returned, its outcome is journaled and the run goes on.

        Inside a running
        event loop a saga with async steps is refused (``EngineUsageError``) before anything
        is journaled: its steps belong on that loop, through :meth:`run_async`.
        """
        _refuse_inside_loop(saga, "run")
        if WAIT.require(wait_s, "wait_s") and self._abandoned.busy(operation_id):
            self._abandoned.wait(operation_id, wait_s)
        start = self._start(saga, operation_id, input)
        if isinstance(start, RunSnapshot):
            return start
        try:
            try:
                self._pump.drive(start)
            except RunExists as exists:
                joined = self._join(saga, exists)
                if isinstance(joined, RunSnapshot):
                    return joined
                self._pump.drive(joined)
        finally:
            self._holds.leave(operation_id)
        return self.store.load(operation_id)

    async def run_async(
        self, saga: Saga, *, operation_id: str, input: JSONValue = None, wait_s: float = 0.0
    ) -> RunSnapshot:
        """The async twin of :meth:`run`: async steps run on the caller's event loop.

        A task cancelled during a sync step (``asyncio.wait_for`` around it) leaves that
        call in flight, exactly as a Ctrl-C does for :meth:`run`.
        """
        if WAIT.require(wait_s, "wait_s") and self._abandoned.busy(operation_id):
            await self._abandoned.wait_async(operation_id, wait_s)
        start = self._start(saga, operation_id, input)
        if isinstance(start, RunSnapshot):
            return start
        try:
            try:
                await self._pump.drive_async(start)
            except RunExists as exists:
                joined = self._join(saga, exists)
                if isinstance(joined, RunSnapshot):
                    return joined
                await self._pump.drive_async(joined)
        finally:
            self._holds.leave(operation_id)
        return self.store.load(operation_id)

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
        _refuse_inside_loop(saga, "resume")
        _check_same_steps(saga, snapshot)
        if not self._holds.enter(operation_id):
            return self.store.load(operation_id)
        try:
            if self._abandoned.busy(operation_id):
                return self.store.load(operation_id)
            claim = self.store.claim(
                operation_id, owner=self.owner, now=self._clock(), lease_s=self.lease_s
            )
            self._holds.started(operation_id)
            self._pump.drive(self._driver(saga, claim))
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

        Runs are claimed one at a time, just before they are driven, so no claim waits in a
        batch while its lease runs out. A run another owner takes over meanwhile is skipped
        (its write is fenced off), never fought over. ``stop`` is asked before each run: a
        worker told to shut down finishes the run in hand and takes no other.
        """
        BATCH.require(limit, "limit")
        recovered: list[RunSnapshot] = []
        for _ in range(limit):
            if stop():
                break
            claims = self.store.claim_expired(
                owner=self.owner, now=self._clock(), lease_s=self.lease_s, limit=1
            )
            if not claims:
                break
            snapshot = self._recover_one(claims[0])
            if snapshot is not None:
                recovered.append(snapshot)
        return recovered

    def _recover_one(self, claim: Claim) -> RunSnapshot | None:
        op = claim.operation_id
        snapshot = self.store.load(op)
        saga = self._sagas.get((snapshot.run.process, snapshot.run.version))
        if saga is None:
            # Keep the claim: its lease expires and a worker that knows the saga takes it.
            logger.warning(
                "run %s is a run of %s v%s, unknown to this engine: left for another worker",
                op,
                snapshot.run.process,
                snapshot.run.version,
            )
            return None
        try:
            _check_same_steps(saga, snapshot)
        except SagaDefinitionError as exc:
            # Keep the claim, as for an unknown saga: a worker with the right version takes it.
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
            self._pump.drive(
                RunDriver(
                    env=self._env, saga=saga, claim=claim, snapshot=snapshot, returned=returned
                )
            )
        except StaleOwnerError:
            logger.warning("run %s was taken over by another owner; skipped", op)
            return None
        finally:
            self._holds.leave(op)
        return self.store.load(op)

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
        while not self._holds.enter(operation_id):
            # A duplicate request while a call of this engine starts or drives the run.
            hold = self._holds.get(operation_id)
            if hold is None:
                continue  # that call has just let go: try to hold the run ourselves
            hold.started.wait()
            if self._holds.get(operation_id) is not hold:
                continue
            # The holder's start is over, so the run is journaled: only compare.
            snapshot = self.store.load(operation_id)
            _check_same_request(new, snapshot)
            return snapshot  # a duplicate request gets the existing run (return_existing)
        now = self._clock()

        def created() -> None:
            self.register(saga)
            self._holds.started(operation_id)

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
            self._holds.started(exists.new_run.operation_id)

    def _take_existing(self, saga: Saga, snapshot: RunSnapshot) -> RunDriver | RunSnapshot:
        """Claim an existing run to drive it, unless it is over or a live owner holds it."""
        run = snapshot.run
        now = self._clock()
        lease_live = run.owner is not None and (run.lease_expires_at or 0.0) > now
        if not run.status.active or (lease_live and run.owner != self.owner):
            return snapshot
        _check_same_steps(saga, snapshot)
        if self._abandoned.busy(run.operation_id):
            return snapshot  # a call of this engine is in flight: the run is in progress
        try:
            claim = self.store.claim(
                run.operation_id, owner=self.owner, now=now, lease_s=self.lease_s
            )
        except RunBusyError:
            return self.store.load(run.operation_id)
        return self._driver(saga, claim)

    def _driver(self, saga: Saga, claim: Claim) -> RunDriver:
        op = claim.operation_id
        return RunDriver(
            env=self._env,
            saga=saga,
            claim=claim,
            snapshot=self.store.load(op),
            returned=self._abandoned.take(op),
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

    def close(self) -> None:
        """Stop the heartbeat thread and the call pool; close the store if this engine opened it."""
        self._heartbeats.close()
        self._caller.close()
        if self._owns_store:
            self.store.close()


def _refuse_inside_loop(saga: Saga, method: str) -> None:
    """``EngineUsageError`` for a sync call of async steps from inside a running event loop.

    The sync engine would run them on loops of its own, away from the caller's (where their
    clients and sessions live), while blocking the caller's loop for the whole run.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if saga.has_async_code():
        raise EngineUsageError(
            f"engine.{method}() of saga {saga.process.name!r}, which has async steps, inside a "
            "running event loop: use await engine.run_async(saga, operation_id=...) instead "
            "(it also resumes an existing run)"
        )


def _check_same_steps(saga: Saga, snapshot: RunSnapshot) -> None:
    """``SagaDefinitionError`` unless ``saga`` has the steps the run was journaled with.

    A saga whose steps changed under the same version cannot drive the runs it started:
    their journal has no row for a new step, and a removed one could not be undone.
    """
    journaled = [record.step_id for record in snapshot.steps]
    declared = [step.id for step in saga.process.steps]
    if journaled == declared:
        return
    run = snapshot.run
    added = [s for s in declared if s not in journaled]
    removed = [s for s in journaled if s not in declared]
    change = "; ".join(
        part
        for part in (
            f"added {added}" if added else "",
            f"removed {removed}" if removed else "",
            "reordered" if not added and not removed else "",
        )
        if part
    )
    raise SagaDefinitionError(
        f"run {run.operation_id} was journaled with steps {journaled}, but {run.process!r} "
        f"v{run.version} now has {declared} ({change}): a changed saga needs a new version; "
        "keep the old one registered until its runs are finished"
    )


def _check_same_request(new: NewRun, snapshot: RunSnapshot) -> None:
    """``OperationConflictError`` unless the journaled run is the run ``new`` asks for."""
    journal.check_same_request(new, snapshot.run, input_hash=new.input_hash)
