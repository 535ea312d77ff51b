"""Handing a run back: what a driver that was interrupted owes the run before it goes.

A caller interrupted while this engine drives a run (Ctrl-C, SIGTERM, a cancelled task)
leaves the run owned by this engine, its call's outcome not journaled. Handing the run back
waits a bounded time for that call, journals its outcome through the run driver, exactly as
the next drive would (:class:`~sagaguard.engine.abandoned.Returned`), makes the moves that
follow from it without a call (a review, the start of a rollback, the run's completion), and
releases the lease in the same commit. It makes no call: no next step, no retry, no verify,
no compensation. Those are the next owner's, and it may start at once.

A call that has still not returned keeps the lease. Its thread may have its effect any
moment, so another owner must not verify or repeat it while it runs; the lease runs out on
its own (the journal's lease covers the call's timeout), and by then the call has returned
or the process that ran it is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sagaguard.engine.abandoned import Abandoned
from sagaguard.engine.driving import Holds
from sagaguard.engine.runner import Environment, RunDriver
from sagaguard.engine.saga import Saga
from sagaguard.exceptions import RunNotFoundError, StaleOwnerError
from sagaguard.storage.base import Claim, RunSnapshot

__all__ = ["HandBack", "HandedBack", "hand_back"]


class HandBack(StrEnum):
    """What became of a run an engine was asked to hand back."""

    RELEASED = "released"
    """What had returned is journaled and the lease released: anyone may continue now."""
    IN_FLIGHT = "in_flight"
    """A call of this engine still runs: the lease is kept until it runs out."""
    NOT_HELD = "not_held"
    """This engine does not own the run: it is over, unknown, or another owner's."""
    BUSY = "busy"
    """Another caller of this engine drives the run right now: it is left to that caller."""


@dataclass(frozen=True, slots=True)
class HandedBack:
    """The answer of :func:`hand_back`: what became of the run, and the run as it stands."""

    result: HandBack
    snapshot: RunSnapshot | None
    """``None`` for a run that was never journaled (interrupted before its first commit)."""


def hand_back(
    operation_id: str,
    *,
    wait_s: float,
    env: Environment,
    owner: str,
    holds: Holds,
    abandoned: Abandoned,
    sagas: Mapping[tuple[str, str], Saga],
) -> HandedBack:
    """Hand the run back as the module says; ``wait_s`` bounds the wait for its calls."""
    abandoned.wait(operation_id, wait_s)
    if not holds.enter(operation_id):
        return HandedBack(HandBack.BUSY, _load(env, operation_id))
    try:
        snapshot = _load(env, operation_id)
        if snapshot is None:
            return HandedBack(HandBack.NOT_HELD, None)
        run = snapshot.run
        if not run.status.active or run.owner != owner:
            return HandedBack(HandBack.NOT_HELD, snapshot)
        if abandoned.busy(operation_id):
            return HandedBack(HandBack.IN_FLIGHT, snapshot)
        # The journal's token is this owner's own: no new claim, so no new fencing token.
        claim = Claim(operation_id, owner, run.fencing_token, run.lease_expires_at or env.clock())
        saga = sagas.get((run.process, run.version))
        if saga is None:
            # Never driven here (interrupted before the run was joined): nothing returned.
            env.store.release(claim, now=env.clock())
        else:
            driver = RunDriver(
                env=env,
                saga=saga,
                claim=claim,
                snapshot=snapshot,
                returned=abandoned.take(operation_id),
                hand_back=True,
            )
            for request in driver.drive():
                raise AssertionError(f"a driver handing its run back asked for {request!r}")
    except StaleOwnerError:
        return HandedBack(HandBack.NOT_HELD, _load(env, operation_id))
    finally:
        holds.leave(operation_id)
    return HandedBack(HandBack.RELEASED, env.store.load(operation_id))


def _load(env: Environment, operation_id: str) -> RunSnapshot | None:
    try:
        return env.store.load(operation_id)
    except RunNotFoundError:
        return None
