"""Properties of the planner over random valid processes (hypothesis).

The oracles below read the spec fields directly (not the model's derived properties), so a
bug in how a step is classified shows up here instead of being agreed with.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagaguard.model import ChangeKind, Observability, Process, StateStore
from sagaguard.planner import Plan, plan
from sagaguard.planner.plan import Area, StepStatus, TestCategory
from sagaguard.rules import Decision, Situation

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SIDE_EFFECTS = [k.value for k in ChangeKind if k is not ChangeKind.NONE]
# `[a-z][a-z0-9_]*`, built from characters: much faster to draw than from a regex.
IDENTIFIERS = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=8),
)
TEXT = st.sampled_from(["Undo it by id", "Release the hold", "Refund in full", "Delete the row"])


@st.composite
def step_data(draw: st.DrawFn, step_id: str) -> dict[str, Any]:
    read_only = draw(st.integers(0, 4)) == 0  # about one step in five changes nothing
    changes = (
        ["none"]
        if read_only
        else draw(st.lists(st.sampled_from(SIDE_EFFECTS), min_size=1, max_size=3, unique=True))
    )
    data: dict[str, Any] = {
        "id": step_id,
        "changes": changes,
        "idempotent": draw(st.sampled_from(["yes", "no", "unknown", True, False])),
    }
    compensation = draw(st.sampled_from([None, "none", "None", "text"]))
    if compensation == "text":
        compensation = draw(TEXT)
    if compensation is not None:
        data["compensation"] = compensation
    optional = {
        "verify": st.sampled_from(["Look it up by key", "Query the provider", "shop.psp:find"]),
        "required": st.just(False),
        "retry_for": st.sampled_from(["10m", "1h"]),
        "external_id": st.sampled_from(["payment_id", "ref", "reservation_id"]),
        "mitigation": st.sampled_from(["Send a correction", "Call the customer"]),
        "timeout": st.sampled_from(["500ms", "5s", "2m", 12]),
        "max_attempts": st.integers(1, 6),
        "action": st.sampled_from(["Do the thing", "Call the partner API"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            data[key] = draw(strategy)
    return data


@st.composite
def processes(draw: st.DrawFn) -> Process:
    ids = draw(st.lists(IDENTIFIERS, min_size=1, max_size=9, unique=True))
    steps = [draw(step_data(step_id)) for step_id in ids]
    declared = draw(st.one_of(st.none(), st.integers(0, len(steps) - 1)))
    if declared is not None:
        # At most one point of no return, never a best-effort one.
        steps[declared]["pivot"] = True
        steps[declared].pop("required", None)
    route_keys = ["default", *SIDE_EFFECTS, "none", *ids]
    alerts = draw(
        st.dictionaries(
            st.sampled_from(route_keys), st.sampled_from(["oncall", "finance", "ops"]), max_size=4
        )
    )
    data: dict[str, Any] = {
        "process": draw(IDENTIFIERS),
        "state_store": draw(st.sampled_from([s.value for s in StateStore])),
        "observability": draw(
            st.lists(st.sampled_from([o.value for o in Observability]), unique=True)
        ),
        "alerts": alerts,
        "steps": steps,
    }
    if draw(st.booleans()):
        data["defaults"] = {
            "compensation_attempts": draw(st.integers(1, 5)),
            "max_attempts": draw(st.integers(1, 5)),
            "backoff_base": draw(st.sampled_from(["100ms", "1s"])),
        }
    return Process.model_validate(data)


def is_read_only(step: Any) -> bool:
    return tuple(c.value for c in step.changes) == ("none",)


def is_compensatable(step: Any) -> bool:
    comp = step.compensation
    return not is_read_only(step) and comp is not None and comp.strip().lower() != "none"


def phase_of(proc: Process, index: int) -> str:
    """Where step ``index`` stands, from the spec fields alone (the model's rule re-stated)."""
    steps = proc.steps
    declared = [i for i, s in enumerate(steps) if s.pivot]
    if declared:
        pivot = declared[0]
    else:
        irreversible = [
            i
            for i, s in enumerate(steps)
            if s.required and not is_read_only(s) and not is_compensatable(s)
        ]
        pivot = irreversible[0] if irreversible else len(steps)
    if index < pivot:
        return "before"
    return "pivot" if index == pivot else "after"


@SETTINGS
@given(processes())
def test_a_rollback_undoes_the_compensatable_steps_before_latest_first(proc: Process) -> None:
    """Before (or at) the pivot: the compensatable steps before the failed one, latest first;
    after the pivot, or for a best-effort step: nothing at all."""
    result = plan(proc)
    assert [s.failed_step for s in result.rollback_sequences] == [s.id for s in proc.steps]
    for index, sequence in enumerate(result.rollback_sequences):
        undone = [
            link.step
            for link in result.rollback_of(sequence)
            if link.decision is Decision.COMPENSATE
        ]
        step = proc.steps[index]
        if not step.required or phase_of(proc, index) == "after":
            assert undone == [], sequence.failed_step
            continue
        before = [s.id for s in proc.steps[:index] if is_compensatable(s)]
        assert undone == before[::-1]
        assert sequence.compensate_count == len(undone)


@SETTINGS
@given(processes())
def test_no_failure_after_the_pivot_compensates_anything_in_any_test(proc: Process) -> None:
    """Invariant 10, in the plan: once the pivot completed nothing at or before it is undone,
    and a best-effort step's failure never rolls the run back."""
    result = plan(proc)
    ids = [s.id for s in proc.steps]
    for test in result.tests:
        failing = [i.step for i in test.injection if i.point.value == "before_call"]
        per_step = test.expected.per_step(ids)
        for step_id in failing:
            index = ids.index(step_id)
            step = proc.steps[index]
            if step.required and phase_of(proc, index) != "after":
                continue
            for earlier in ids[:index]:
                assert per_step[earlier].compensations.at_least == 0, (test.id, earlier)


@SETTINGS
@given(processes())
def test_no_unknown_outcome_of_an_unsafe_step_is_retried(proc: Process) -> None:
    """Timeout / crash before persist of a non-idempotent side effect: verify or a person."""
    for entry in plan(proc).decision_matrix:
        if entry.situation not in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
            continue
        step = proc.step(entry.step)
        if is_read_only(step) or step.idempotent.value == "yes":
            assert entry.decision is Decision.RETRY
        elif step.verify and ":" in step.verify and " " not in step.verify:
            assert entry.decision is Decision.VERIFY
        else:
            expected = Decision.MANUAL_REVIEW if step.required else Decision.CONTINUE
            assert entry.decision is expected


@SETTINGS
@given(processes())
def test_every_step_is_in_every_table(proc: Process) -> None:
    """Step table, matrix (x every situation), rollback and failure_after tests cover all."""
    result = plan(proc)
    ids = [s.id for s in proc.steps]
    assert [r.id for r in result.steps] == ids
    assert [(e.step, e.situation) for e in result.decision_matrix] == [
        (i, s) for i in ids for s in Situation
    ]
    after = [t.step for t in result.tests if t.category is TestCategory.FAILURE_AFTER_STEP]
    assert after == ids
    policies = [p.step for p in result.rollback_failure_policy]
    assert policies == [
        s.id
        for i, s in enumerate(proc.steps[:-1])
        if is_compensatable(s) and phase_of(proc, i) == "before"
    ]


@SETTINGS
@given(processes())
def test_checklist_has_eight_items_in_both_areas(proc: Process) -> None:
    items = plan(proc).checklist
    assert len(items) >= 8
    assert {i.area for i in items} == {Area.ENGINEERING, Area.OPERATIONS}


@SETTINGS
@given(processes())
def test_expected_states_cover_every_step_once_and_are_consistent(proc: Process) -> None:
    """Runs cover each step once in order; only compensatable steps are compensated; a
    pending step was never called; every alert names its step's route."""
    ids = [s.id for s in proc.steps]
    for test in plan(proc).tests:
        covered: list[str] = []
        for run in test.expected.steps:
            covered += ids[ids.index(run.first) : ids.index(run.last) + 1]
            if run.status is StepStatus.PENDING:
                assert run.calls.at_most == 0
            if run.status is StepStatus.COMPENSATED:
                for step_id in ids[ids.index(run.first) : ids.index(run.last) + 1]:
                    assert is_compensatable(proc.step(step_id)), test.id
        assert covered == ids, test.id
        for alert in test.expected.alerts:
            assert alert.route == proc.alert_route(proc.step(alert.step))


@SETTINGS
@given(processes())
def test_plan_round_trips_through_json_and_flow_is_well_formed(proc: Process) -> None:
    """Any valid process gives a plan that validates back from its JSON; the graph is closed."""
    result = plan(proc)
    assert Plan.model_validate(json.loads(json.dumps(result.model_dump(mode="json")))) == result
    node_ids = [n.id for n in result.flow.nodes]
    assert len(node_ids) == len(set(node_ids))
    assert all(e.source in node_ids and e.target in node_ids for e in result.flow.edges)
    assert len(result.example_states.before) == len(proc.steps)
    assert len(result.example_states.after) == len(proc.steps)
    assert result.ready is not any(f.severity.value == "error" for f in result.findings)


@SETTINGS
@given(processes())
def test_who_works_a_case_is_a_route_or_the_review_queue(proc: Process) -> None:
    """Never a placeholder such as "add alerts.default" where a person or route belongs."""
    result = plan(proc)
    for entry in result.steps:
        assert "add alerts" not in entry.alert_to
        assert entry.alert_to == (entry.alert_route or entry.alert_to)
    for policy in result.rollback_failure_policy:
        assert "add alerts" not in policy.alert_to
    unrouted = [p for p in result.rollback_failure_policy if p.alert_route is None]
    if unrouted:
        assert {"SG008", "SG015"} & {f.code for f in result.findings}
