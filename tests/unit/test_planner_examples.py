"""Example journal states of the most dangerous failure, and the flow diagram's graph."""

from __future__ import annotations

from typing import Any

from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.plan import FlowEdgeKind, FlowNodeKind, RunStatus, StepStatus


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


CHECKOUT = process(
    step("create_order", compensation="Cancel the order", external_id="order_id"),
    step(
        "charge_payment",
        "payment",
        "unknown",
        compensation="Refund",
        external_id="payment_id",
        verify="Look the charge up by key",
        timeout="10s",
    ),
    step("book_delivery", "external_api", compensation="Cancel", external_id="delivery_id"),
    step(
        "send_email",
        "email",
        "no",
        compensation="none",
        mitigation="Send a correction",
        verify="Look the message up",
    ),
    alerts={"default": "oncall", "payment": "finance"},
)


def statuses(rows: tuple[Any, ...]) -> list[tuple[str, StepStatus]]:
    return [(r.step_id, r.status) for r in rows]


def test_lost_payment_answer_is_verified_and_completes_without_a_second_charge() -> None:
    """The guide's incident: the payment times out; verify finds it; the run completes."""
    example = plan(CHECKOUT).example_states
    assert example.step == "charge_payment"
    assert "within 10s" in example.scenario
    assert statuses(example.before) == [
        ("create_order", StepStatus.COMPLETED),
        ("charge_payment", StepStatus.UNKNOWN),
        ("book_delivery", StepStatus.PENDING),
        ("send_email", StepStatus.PENDING),
    ]
    charge_after = example.after[1]
    assert charge_after.status is StepStatus.COMPLETED
    assert charge_after.attempts == 1  # no second call
    assert (charge_after.external_id or "").startswith("payment_id=")
    assert example.run_status_after is RunStatus.COMPLETED
    assert "Look the charge up by key" in example.recovery


def test_rows_share_one_operation_id_and_carry_ids_only_once_they_exist() -> None:
    """External ids appear for completed steps, not for pending or unknown ones."""
    example = plan(CHECKOUT).example_states
    assert len({r.operation_id for r in (*example.before, *example.after)}) == 1
    before = {r.step_id: r for r in example.before}
    assert (before["create_order"].external_id or "").startswith("order_id=")
    assert before["charge_payment"].external_id is None
    assert before["book_delivery"].attempts == 0


def test_lost_answer_without_verify_waits_for_a_person() -> None:
    """No verify: the unknown step is in needs_manual_review and nothing moves."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        step("mail", "email", "yes", compensation="none"),
        alerts={"default": "logistics"},
    )
    example = plan(shop).example_states
    assert example.step == "ship"
    assert statuses(example.after) == [
        ("write", StepStatus.COMPLETED),
        ("ship", StepStatus.NEEDS_MANUAL_REVIEW),
        ("mail", StepStatus.PENDING),
    ]
    assert example.run_status_after is RunStatus.NEEDS_MANUAL_REVIEW
    assert "logistics" in example.recovery


def test_all_retriable_process_shows_a_failed_compensation() -> None:
    """When every lost answer is safely retried, the worst case is a failed undo."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("reserve", "reservation", compensation="Release", external_id="res_id"),
        step("publish", "queue", compensation="Publish a cancel", external_id="msg_id"),
        step("mail", "email", "yes", compensation="none"),
    )
    example = plan(shop).example_states
    assert example.step == "reserve"
    assert statuses(example.after) == [
        ("write", StepStatus.COMPLETED),
        ("reserve", StepStatus.COMPENSATION_FAILED),
        ("publish", StepStatus.COMPENSATED),
        ("mail", StepStatus.FAILED),
    ]
    assert example.run_status_after is RunStatus.NEEDS_MANUAL_REVIEW


def test_nothing_to_undo_shows_the_last_step_failing() -> None:
    """No compensatable step and no unsafe one: the last step fails definitely."""
    shop = process(step("read", "none"), step("log", "database", "yes", compensation="none"))
    example = plan(shop).example_states
    assert example.step == "log"
    assert statuses(example.after) == [("read", StepStatus.COMPLETED), ("log", StepStatus.FAILED)]
    assert example.run_status_after is RunStatus.FAILED


def test_flow_nodes_are_unique_and_every_edge_joins_two_of_them() -> None:
    """The graph is well formed, whatever renders it."""
    flow = plan(CHECKOUT).flow
    ids = [n.id for n in flow.nodes]
    assert len(ids) == len(set(ids))
    for edge in flow.edges:
        assert edge.source in ids
        assert edge.target in ids


def test_flow_forward_path_runs_through_every_step_in_order() -> None:
    """start -> each step -> end_completed."""
    flow = plan(CHECKOUT).flow
    forward = [(e.source, e.target) for e in flow.edges if e.kind is FlowEdgeKind.FORWARD]
    assert forward == [
        ("start", "step_create_order"),
        ("step_create_order", "step_charge_payment"),
        ("step_charge_payment", "step_book_delivery"),
        ("step_book_delivery", "step_send_email"),
        ("step_send_email", "end_completed"),
    ]


def test_flow_compensation_path_runs_backward_and_failures_enter_it() -> None:
    """A failure enters the undo chain at the latest side-effecting step before it."""
    flow = plan(CHECKOUT).flow
    chain = [(e.source, e.target) for e in flow.edges if e.kind is FlowEdgeKind.COMPENSATION]
    assert chain == [
        ("undo_book_delivery", "undo_charge_payment"),
        ("undo_charge_payment", "undo_create_order"),
        ("undo_create_order", "end_rolled_back"),
    ]
    failures = {e.source: e.target for e in flow.edges if e.kind is FlowEdgeKind.FAILURE}
    assert failures == {
        "step_create_order": "end_failed",
        "step_charge_payment": "undo_create_order",
        "step_book_delivery": "undo_charge_payment",
        "step_send_email": "undo_book_delivery",
    }


def test_flow_sends_unknown_outcomes_and_failed_undos_to_manual_review() -> None:
    """Every side-effecting step and every undo can end at manual review, as the matrix says.

    An idempotent step is retried with the same key, and goes to a person when no attempt
    gets an answer; a read-only step never does (it just fails).
    """
    shop = process(step("look_up", "none"), *CHECKOUT.model_dump(by_alias=True)["steps"])
    flow = plan(shop).flow
    unknown = {e.source: e.label for e in flow.edges if e.kind is FlowEdgeKind.UNKNOWN_OUTCOME}
    assert unknown == {
        "step_create_order": "still unknown after 3 attempts",
        "step_charge_payment": "outcome unknown, verify cannot tell",
        "step_book_delivery": "still unknown after 3 attempts",
        "step_send_email": "outcome unknown, verify cannot tell",
    }
    flow = plan(CHECKOUT).flow
    failed_undo = {e.source for e in flow.edges if e.kind is FlowEdgeKind.COMPENSATION_FAILED}
    assert failed_undo == {"undo_book_delivery", "undo_charge_payment", "undo_create_order"}
    kinds = {n.id: n.kind for n in flow.nodes}
    assert kinds["manual_review"] is FlowNodeKind.MANUAL_REVIEW


def test_flow_mitigation_node_for_an_irreversible_step_before_the_end() -> None:
    """An email in the middle sits on the rollback path as a mitigation, not an undo."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="Apologise"),
        step("ship", "external_api", "yes", compensation="Cancel", external_id="ship_id"),
    )
    nodes = {n.id: n for n in plan(shop).flow.nodes}
    assert nodes["mitigate_mail"].kind is FlowNodeKind.MITIGATION
    assert nodes["mitigate_mail"].label == "Apologise"
    assert "undo_ship" not in nodes  # the last step is never undone
