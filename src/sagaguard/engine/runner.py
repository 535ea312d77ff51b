"""The run driver: moves one owned run forward or backward until it stops.

Written as a generator that yields :class:`~sagaguard.engine.calls.Call`,
:class:`~sagaguard.engine.calls.Sleep` and :class:`~sagaguard.engine.calls.WaitFor` requests,
so the sync and the async engine share every decision and differ only in how they perform a
call. Every decision comes from :func:`sagaguard.rules.decide` through one dispatch
(:mod:`sagaguard.engine.dispatch`); :mod:`~sagaguard.engine.forward` and
:mod:`~sagaguard.engine.backward` make the moves, :mod:`~sagaguard.engine.staging` journals
them (write-ahead, one fenced commit before every call).

A driver stops when the run is terminal or waits for a person, and releases the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping

from sagaguard.engine.abandoned import Returned
from sagaguard.engine.backward import Backward
from sagaguard.engine.calls import Outcome, PendingCall, Request
from sagaguard.engine.dispatch import End
from sagaguard.engine.forward import Forward
from sagaguard.engine.saga import Saga
from sagaguard.engine.staging import Environment, RunExists, StagedRun, StopBeforeCall
from sagaguard.exceptions import SagaGuardError
from sagaguard.storage.base import Claim, NewRun, RunSnapshot, RunStatus
from sagaguard.vocabulary import EventKind

__all__ = ["Environment", "Request", "RunDriver", "RunExists", "RunGenerator"]

RunGenerator = Generator[Request, Outcome | None, None]

logger = logging.getLogger("sagaguard.engine")


class RunDriver:
    """Owns one run for one stretch of work, from a claim to a stop.

    Its arguments are :class:`~sagaguard.engine.staging.StagedRun`'s: a ``new_run`` is
    created by the driver's first commit (``RunExists`` if it exists already); ``returned``
    holds the outcomes of calls an interrupted driver of the run made, to journal them;
    with ``hand_back`` the driver journals them and what follows from them without a call,
    then releases the run (:mod:`~sagaguard.engine.handing_back`).
    """

    def __init__(
        self,
        *,
        env: Environment,
        saga: Saga,
        claim: Claim,
        snapshot: RunSnapshot,
        new_run: NewRun | None = None,
        on_created: Callable[[], None] | None = None,
        returned: Mapping[str, Returned] | None = None,
        hand_back: bool = False,
    ) -> None:
        self.run = StagedRun(
            env=env,
            saga=saga,
            claim=claim,
            snapshot=snapshot,
            new_run=new_run,
            on_created=on_created,
            returned=dict(returned or {}),
            handing_back=hand_back,
        )
        self._forward = Forward(self.run)
        self._backward = Backward(self.run)

    @property
    def operation_id(self) -> str:
        """The run's operation id."""
        return self.run.operation_id

    @property
    def created(self) -> bool:
        """True once the run is in the journal (a new run is created by its first commit)."""
        return self.run.new_run is None

    def calls_in_flight(self) -> list[PendingCall]:
        """Calls that outlived their timeout and were not settled yet (they may still run)."""
        return self._forward.calls_in_flight()

    def drive(self) -> RunGenerator:
        """Move the run until it is terminal or waits for a person, then release it.

        An error the engine did not expect puts the run in the hands of a person (with the
        error), so one poison run never stops a worker; the journal's own errors (a lost
        lease, a failed store) go to the caller as they are.
        """
        try:
            while self.run.status.active:
                if self.run.status is RunStatus.RUNNING:
                    yield from self._forward_pass()
                else:
                    yield from self._backward.rollback_all()
        except (SagaGuardError, RunExists):
            raise
        except StopBeforeCall:
            pass  # handing the run back: the call it stopped before is the next owner's
        except Exception as error:
            logger.error("run %s stopped on an engine error", self.operation_id, exc_info=True)
            self.run.halt(error)
        # The run's last transitions and the owner's release share one commit.
        self.run.flush(release=True)

    def _forward_pass(self) -> RunGenerator:
        for step in self.run.process.steps:
            end = yield from self._forward.advance(step)
            if end in (End.ROLLBACK, End.STOP):
                return
        self.run.stage(EventKind.RUN_COMPLETED, run_status=RunStatus.COMPLETED)
