"""Allowed resolutions: what the operator offers is exactly what ``Engine.resolve`` accepts.

The conformance test runs the engine for every step status, every outcome, with and without
an external-id field and with the run waiting or not, and checks that the offer and the
engine agree (and where the run goes): it fails when either side changes alone.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from tests.unit.journal_records import T0, snapshot

from sagaguard.engine import Engine
from sagaguard.engine.resolution import Resolution
from sagaguard.exceptions import ResolutionError
from sagaguard.operator import AllowedResolution, allowed_resolutions
from sagaguard.storage import NewRun, StepChange, Transition
from sagaguard.storage.base import RunSnapshot, RunStatus, StepStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.vocabulary import EventKind

ID_FIELD = "payment_id"


def _waiting(step: StepStatus, run: RunStatus, *, id_field: str | None) -> InMemoryStore:
    store = InMemoryStore()
    fields = {"charge": id_field} if id_field else {}
    created = store.create_run(
        NewRun("op-1", "checkout", "1", {}, ("reserve", "charge"), external_id_fields=fields),
        owner="w",
        now=T0,
        lease_s=30,
    )
    assert created.claim is not None
    done = StepChange("reserve", StepStatus.COMPLETED, completed_seq=1)
    held = StepChange("charge", step)
    moves = [
        Transition(kind=EventKind.STEP_COMPLETED, step=done),
        Transition(kind=EventKind.NEEDS_MANUAL_REVIEW, step=held, run_status=run),
    ]
    store.record(created.claim, moves, now=T0, lease_s=30, release=True)
    return store


def _engine_says(
    store: InMemoryStore, outcome: Resolution, result: Any
) -> RunSnapshot | ResolutionError:
    with Engine(store=store) as engine:
        try:
            return engine.resolve(
                "op-1",
                step_id="charge",
                outcome=outcome,
                by="ada",
                note="checked",
                result=result,
                proceed=False,
            )
        except ResolutionError as refused:
            return refused


CASES = list(
    itertools.product(
        StepStatus,
        (RunStatus.NEEDS_MANUAL_REVIEW, RunStatus.RUNNING),
        (ID_FIELD, None),
    )
)


@pytest.mark.parametrize(
    ("step", "run", "id_field"),
    CASES,
    ids=[f"{s.value}-{r.value}-{'id' if f else 'no_id'}" for s, r, f in CASES],
)
def test_the_offer_is_what_the_engine_accepts(
    step: StepStatus, run: RunStatus, id_field: str | None
) -> None:
    offered = {
        allowed.outcome: allowed
        for allowed in allowed_resolutions(
            _waiting(step, run, id_field=id_field).load("op-1"), "charge"
        )
    }
    for outcome in Resolution:
        allowed = offered.get(outcome)
        result = {ID_FIELD: "pay_1"} if allowed is not None and allowed.takes_result else None
        said = _engine_says(_waiting(step, run, id_field=id_field), outcome, result)
        if allowed is None:
            assert isinstance(said, ResolutionError), (outcome, said)
            continue
        assert isinstance(said, RunSnapshot), (outcome, said)
        assert said.run.status is allowed.run_goes_to
        assert allowed.result_field == (id_field if outcome is Resolution.COMPLETED else None)
        if allowed.result_field is not None:
            # What the offer says the result needs is what the engine demands.
            with pytest.raises(ResolutionError) as early:
                allowed.check(None)
            refused = _engine_says(_waiting(step, run, id_field=id_field), outcome, None)
            assert isinstance(refused, ResolutionError)
            assert str(early.value) == str(refused)


def test_an_unknown_outcome_may_be_found_anything_a_failed_undo_only_compensated() -> None:
    unknown = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.NEEDS_MANUAL_REVIEW))
    undo = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.COMPENSATION_FAILED))

    assert [a.outcome for a in allowed_resolutions(unknown, "charge")] == list(Resolution)
    assert [a.outcome for a in allowed_resolutions(undo, "charge")] == [Resolution.COMPENSATED]
    assert allowed_resolutions(unknown, "no_such_step") == ()


def test_the_saga_s_external_id_field_stands_in_for_a_run_journaled_without_it() -> None:
    """Runs journaled before steps recorded their field: the saga's declaration is used."""
    older = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.UNKNOWN))

    (completed, *_) = allowed_resolutions(older, "charge", external_id_field="payment_id")

    assert completed.result_field == "payment_id"
    with pytest.raises(ResolutionError, match="persists payment_id"):
        completed.check({"amount": 5})
    completed.check({"payment_id": "pay_9"})


def test_only_completed_takes_a_result() -> None:
    waiting = snapshot(RunStatus.NEEDS_MANUAL_REVIEW, ("charge", StepStatus.UNKNOWN))
    by_outcome = {a.outcome: a for a in allowed_resolutions(waiting, "charge")}

    by_outcome[Resolution.COMPLETED].check({"anything": 1})
    by_outcome[Resolution.COMPLETED].check(None)  # no field to hold: no result needed
    with pytest.raises(ResolutionError, match="only to completed"):
        by_outcome[Resolution.NOT_APPLIED].check({"payment_id": "p"})
    by_outcome[Resolution.NOT_APPLIED].check(None)


def test_an_allowed_resolution_is_json() -> None:
    allowed = AllowedResolution(
        step_id="charge",
        outcome=Resolution.COMPLETED,
        takes_result=True,
        result_field="payment_id",
        run_goes_to=RunStatus.RUNNING,
    )
    assert allowed.to_json() == {
        "outcome": "completed",
        "takes_result": True,
        "result_field": "payment_id",
        "run_goes_to": "running",
    }
