"""The checks an engine makes before it journals, drives or answers with a run.

Each one refuses a call that would journal or drive the wrong thing: a saga that cannot run
(:func:`run_request`), a sync call of async steps inside an event loop, a saga whose steps
changed under one version, another request under an operation id already used.
"""

from __future__ import annotations

import asyncio

from sagaguard.engine.saga import Saga
from sagaguard.exceptions import EngineUsageError, SagaDefinitionError
from sagaguard.storage import journal
from sagaguard.storage.base import NewRun, RunSnapshot
from sagaguard.storage.payloads import JSONValue

__all__ = ["check_same_request", "check_same_steps", "refuse_inside_loop", "run_request"]


def refuse_inside_loop(saga: Saga, method: str) -> None:
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


def check_same_steps(saga: Saga, snapshot: RunSnapshot) -> None:
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


def check_same_request(new: NewRun, snapshot: RunSnapshot) -> None:
    """``OperationConflictError`` unless the journaled run is the run ``new`` asks for."""
    journal.check_same_request(new, snapshot.run, input_hash=new.input_hash)


def run_request(saga: Saga, operation_id: str, input: JSONValue) -> NewRun:
    """What the journal records for a run of ``saga`` (refused if the saga cannot run)."""
    saga.check_runnable()
    process = saga.process
    return NewRun(
        operation_id=operation_id,
        process=process.name,
        version=process.version,
        input=input,
        step_ids=tuple(step.id for step in process.steps),
        external_id_fields={s.id: s.external_id for s in process.steps if s.external_id},
    )
