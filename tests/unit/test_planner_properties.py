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

from sagaguard._legacy_rules import Decision, Situation
from sagaguard.model import ChangeKind, Observability, Process, StateStore
from sagaguard.planner import Plan, plan
from sagaguard.planner.plan import Area, TestCategory

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
        "verify": st.sampled_from(["Look it up by key", "Query the provider"]),
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


@SETTINGS
@given(processes())
def test_each_rollback_sequence_reverses_the_compensatable_steps_before(proc: Process) -> None:
    """compensate = compensatable steps before the failed one, latest first."""
    result = plan(proc)
    assert [s.failed_step for s in result.rollback_sequences] == [s.id for s in proc.steps]
    for index, sequence in enumerate(result.rollback_sequences):
        before = [s.id for s in proc.steps[:index] if is_compensatable(s)]
        assert list(sequence.compensate) == before[::-1]


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
        else:
            expected = Decision.VERIFY if step.verify else Decision.MANUAL_REVIEW
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
    # The last step is never compensated, so its compensation has no failure policy.
    assert policies == [s.id for s in proc.steps[:-1] if is_compensatable(s)]


@SETTINGS
@given(processes())
def test_checklist_has_eight_items_in_both_areas(proc: Process) -> None:
    """At least 8 items, engineering and operations both present."""
    items = plan(proc).checklist
    assert len(items) >= 8
    assert {i.area for i in items} == {Area.ENGINEERING, Area.OPERATIONS}


@SETTINGS
@given(processes())
def test_expected_states_are_consistent(proc: Process) -> None:
    """A step is active, compensated or waiting for review, never two at once; only
    side-effecting steps are active; compensated ones were compensatable."""
    for test in plan(proc).tests:
        expected = test.expected
        active, undone, review = (
            set(expected.active),
            set(expected.compensated),
            set(expected.manual_review),
        )
        assert not active & undone, test.id
        assert not active & review, test.id
        assert not undone & review, test.id
        assert all(not is_read_only(proc.step(s)) for s in active)
        assert all(is_compensatable(proc.step(s)) for s in undone)
        if expected.alert is not None:
            assert expected.alert.route == proc.alert_route(proc.step(expected.alert.step))


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


@SETTINGS
@given(processes())
def test_missing_route_is_a_finding_and_named_in_the_policy(proc: Process) -> None:
    """A compensatable step nobody is alerted for: SG008 and "no route: add alerts..."."""
    result = plan(proc)
    unrouted = [p for p in result.rollback_failure_policy if p.alert_route is None]
    for policy in unrouted:
        assert policy.alert_to.startswith("no route: add alerts.")
    if unrouted:
        assert any(f.code == "SG008" for f in result.findings)
