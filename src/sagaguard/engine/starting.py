"""How a call of ``run`` meets its run: creates it, joins it, or takes it over.

:class:`Starts` gives the engine a :class:`~sagaguard.engine.runner.RunDriver` to drive, or
the run as it stands (a :class:`~sagaguard.engine.results.RunResult`) when this call must
not drive it: the run is over, a live owner holds it, or a call of this engine is still in
flight on it. A duplicate request arriving while this engine starts the same run waits for
that start, then only compares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sagaguard.engine.abandoned import Abandoned
from sagaguard.engine.checks import check_same_request, check_same_steps, run_request
from sagaguard.engine.driving import Holds
from sagaguard.engine.results import RunResult
from sagaguard.engine.runner import Environment, RunDriver, RunExists
from sagaguard.engine.saga import Saga
from sagaguard.exceptions import RunBusyError
from sagaguard.storage.base import Claim, RunSnapshot
from sagaguard.storage.payloads import JSONValue

__all__ = ["Starts"]


@dataclass(frozen=True)
class Starts:
    """The engine's parts a start needs; ``register`` makes a saga resumable."""

    env: Environment
    holds: Holds
    abandoned: Abandoned
    owner: str
    register: Callable[[Saga], Saga]

    def start(self, saga: Saga, operation_id: str, input: JSONValue) -> RunDriver | RunResult:
        """A driver that creates the run (this call then holds it), or the run as it stands.

        The driver creates the run with its first commit; if the run exists already it raises
        ``RunExists`` before calling anything, and :meth:`join` takes over.
        """
        store = self.env.store
        new = run_request(saga, operation_id, input)
        while not self.holds.enter(operation_id):
            # A duplicate request while a call of this engine starts or drives the run.
            hold = self.holds.get(operation_id)
            if hold is None:
                continue  # that call has just let go: try to hold the run ourselves
            hold.started.wait()
            if self.holds.get(operation_id) is not hold:
                continue
            # The holder's start is over, so the run is journaled: only compare.
            snapshot = store.load(operation_id)
            check_same_request(new, snapshot)
            return RunResult.existing(snapshot)  # a duplicate request gets the existing run
        now = self.env.clock()
        lease_s = self.env.lease_s

        def created() -> None:
            self.register(saga)
            self.holds.started(operation_id)

        return RunDriver(
            env=self.env,
            saga=saga,
            claim=Claim(operation_id, self.owner, 1, now + lease_s),
            snapshot=new.snapshot(owner=self.owner, now=now, lease_s=lease_s),
            new_run=new,
            on_created=created,
        )

    def join(self, saga: Saga, exists: RunExists) -> RunDriver | RunResult:
        """The run existed: drive it if it is unfinished and nobody live holds it."""
        try:
            check_same_request(exists.new_run, exists.snapshot)
            joined = self._take_existing(saga, exists.snapshot)
            if isinstance(joined, RunDriver):
                self.register(saga)
            return joined
        finally:
            self.holds.started(exists.new_run.operation_id)

    def driver(self, saga: Saga, claim: Claim) -> RunDriver:
        """A driver of a run this engine has just claimed, from the run as journaled."""
        op = claim.operation_id
        return RunDriver(
            env=self.env,
            saga=saga,
            claim=claim,
            snapshot=self.env.store.load(op),
            returned=self.abandoned.take(op),
        )

    def _take_existing(self, saga: Saga, snapshot: RunSnapshot) -> RunDriver | RunResult:
        """Claim an existing run to drive it, unless it is over or a live owner holds it."""
        run = snapshot.run
        store = self.env.store
        now = self.env.clock()
        lease_live = run.owner is not None and (run.lease_expires_at or 0.0) > now
        if not run.status.active or (lease_live and run.owner != self.owner):
            return RunResult.existing(snapshot)
        check_same_steps(saga, snapshot)
        if self.abandoned.busy(run.operation_id):
            # A call of this engine is in flight: the run is in progress.
            return RunResult.existing(snapshot)
        try:
            claim = store.claim(
                run.operation_id, owner=self.owner, now=now, lease_s=self.env.lease_s
            )
        except RunBusyError:
            return RunResult.existing(store.load(run.operation_id))
        return self.driver(saga, claim)
