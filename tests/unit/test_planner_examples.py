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
        verify="shop.psp:find_charge",
        timeout="10s",
    ),
    step("book_delivery", "external_api", compensation="Cancel", external_id="delivery_id"),
    step(
        "send_email",
        "email",
        "no",
        compensation="none",
        mitigation="Send a correction",
        required=False,
    ),
    alerts={"default": "oncall", "payment": "finance"},
)

PAYOUT = process(
    step("debit", "payment", compensation="Credit back", external_id="debit_id"),
    step("fx", "payment", compensation="Reverse the trade", external_id="fx_trade_id"),
    step("transfer", "payment", "no", compensation="none", pivot=True, verify="bank:find"),
    step("post_ledger", compensation="Reverse the posting", retry_for="2h"),
    step("advise", "email", "no", compensation="none", required=False),
    alerts={"default": "ops", "payment": "treasury"},
)


def statuses(rows: tuple[Any, ...]) -> list[tuple[str, StepStatus]]:
    return [(r.step_id, r.status) for r in rows]


def test_the_most_dangerous_failure_is_chosen_by_impact_money_first() -> None:
    """A refund that keeps failing (money moved, not given back) outranks a lost answer that
    verify settles: the checkout shows the failed refund."""
    example = plan(CHECKOUT).example_states
    assert example.step == "charge_payment"
    assert example.impact == "money moved and not settled"
    assert statuses(example.after) == [
        ("create_order", StepStatus.COMPLETED),
        ("charge_payment", StepStatus.COMPENSATION_FAILED),
        ("book_delivery", StepStatus.FAILED),
        ("send_email", StepStatus.PENDING),
    ]
    assert example.run_status_after is RunStatus.NEEDS_MANUAL_REVIEW
    assert "compensation_failed alert goes to finance" in example.recovery


def test_a_failure_after_the_pivot_is_shown_when_money_already_moved() -> None:
    """The payout: the ledger posting fails after the bank transfer; nothing is undone."""
    example = plan(PAYOUT).example_states
    assert example.step == "post_ledger"
    assert example.impact == "money moved and not settled"
    assert statuses(example.after) == [
        ("debit", StepStatus.COMPLETED),
        ("fx", StepStatus.COMPLETED),
        ("transfer", StepStatus.COMPLETED),
        ("post_ledger", StepStatus.NEEDS_MANUAL_REVIEW),
        ("advise", StepStatus.PENDING),
    ]
    assert "forward recovery" in example.recovery
    assert "Nothing before it is compensated" in example.recovery


def test_rows_share_one_operation_id_and_carry_ids_only_once_they_exist() -> None:
    example = plan(PAYOUT).example_states
    assert len({r.operation_id for r in (*example.before, *example.after)}) == 1
    before = {r.step_id: r for r in example.before}
    assert (before["debit"].external_id or "").startswith("debit_id=deb_")
    assert before["post_ledger"].external_id is None
    assert before["advise"].attempts == 0


def test_example_ids_never_double_an_underscore() -> None:
    """fx_trade_id reads fx_trade_id=fxt_..., never fx__..."""
    rows = plan(PAYOUT).example_states.before
    fx = {r.step_id: r for r in rows}["fx"].external_id or ""
    assert fx.startswith("fx_trade_id=fxt_")
    assert all("__" not in (r.external_id or "") for r in rows)


def test_a_lost_answer_without_verify_waits_for_a_person() -> None:
    """Nothing can be undone or has moved money: the unknown outcome is the worst case."""
    shop = process(
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        step("mail", "email", "no", compensation="none", mitigation="x", required=False),
        alerts={"default": "logistics"},
    )
    example = plan(shop).example_states
    assert example.step == "ship"
    assert example.impact == "an outcome nobody knows"
    assert statuses(example.after) == [
        ("ship", StepStatus.NEEDS_MANUAL_REVIEW),
        ("mail", StepStatus.PENDING),
    ]
    assert "logistics" in example.recovery


def test_all_retriable_process_shows_a_failed_compensation() -> None:
    """When every lost answer is safely retried, the worst case is a failed undo."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("reserve", "reservation", compensation="Release", external_id="res_id"),
        step("publish", "queue", compensation="Publish a cancel", external_id="msg_id"),
        step("log", compensation="Delete", external_id="log_id"),
    )
    example = plan(shop).example_states
    assert example.step == "reserve"
    assert statuses(example.after) == [
        ("write", StepStatus.COMPLETED),
        ("reserve", StepStatus.COMPENSATION_FAILED),
        ("publish", StepStatus.COMPENSATED),
        ("log", StepStatus.FAILED),
    ]


def test_nothing_to_undo_shows_the_last_step_failing() -> None:
    shop = process(step("read", "none"), step("log", "database", "yes", compensation="none"))
    example = plan(shop).example_states
    assert example.step == "log"
    assert statuses(example.after) == [("read", StepStatus.COMPLETED), ("log", StepStatus.FAILED)]
    assert example.run_status_after is RunStatus.FAILED


def test_flow_nodes_are_unique_and_every_edge_joins_two_of_them() -> None:
    for proc in (CHECKOUT, PAYOUT):
        flow = plan(proc).flow
        ids = [n.id for n in flow.nodes]
        assert len(ids) == len(set(ids))
        for edge in flow.edges:
            assert edge.source in ids
            assert edge.target in ids


def test_flow_forward_path_runs_through_every_step_in_order() -> None:
    flow = plan(CHECKOUT).flow
    forward = [(e.source, e.target) for e in flow.edges if e.kind is FlowEdgeKind.FORWARD]
    assert forward == [
        ("start", "step_create_order"),
        ("step_create_order", "step_charge_payment"),
        ("step_charge_payment", "step_book_delivery"),
        ("step_book_delivery", "step_send_email"),
        ("step_send_email", "end_completed"),
    ]


def test_flow_marks_the_pivot_and_the_best_effort_steps() -> None:
    nodes = {n.id: n for n in plan(PAYOUT).flow.nodes}
    assert [n for n in nodes if nodes[n].pivot] == ["step_transfer"]
    assert not nodes["step_advise"].required


def test_flow_compensation_path_stops_before_the_pivot() -> None:
    """A failure before (or of) the pivot enters the chain; after it, a person; a best-effort
    failure is skipped."""
    flow = plan(PAYOUT).flow
    chain = [(e.source, e.target) for e in flow.edges if e.kind is FlowEdgeKind.COMPENSATION]
    assert chain == [("undo_fx", "undo_debit"), ("undo_debit", "end_rolled_back")]
    failures = {e.source: e.target for e in flow.edges if e.kind is FlowEdgeKind.FAILURE}
    assert failures == {
        "step_debit": "end_failed",
        "step_fx": "undo_debit",
        "step_transfer": "undo_fx",
    }
    forward = {e.source: e.target for e in flow.edges if e.kind is FlowEdgeKind.FORWARD_RECOVERY}
    assert forward == {"step_post_ledger": "manual_review"}
    skipped = {e.source: e.target for e in flow.edges if e.kind is FlowEdgeKind.SKIPPED}
    assert skipped == {"step_advise": "end_completed"}


def test_flow_sends_unknown_outcomes_and_failed_undos_to_manual_review() -> None:
    shop = process(step("look_up", "none"), *CHECKOUT.model_dump(by_alias=True)["steps"])
    flow = plan(shop).flow
    unknown = {e.source: e.label for e in flow.edges if e.kind is FlowEdgeKind.UNKNOWN_OUTCOME}
    assert unknown == {
        "step_create_order": "still unknown after 3 attempts",
        "step_charge_payment": "outcome unknown, verify cannot tell",
        "step_book_delivery": "still unknown after 3 attempts",
    }
    failed_undo = {e.source for e in flow.edges if e.kind is FlowEdgeKind.COMPENSATION_FAILED}
    assert failed_undo == {"undo_book_delivery", "undo_charge_payment", "undo_create_order"}
    kinds = {n.id: n.kind for n in flow.nodes}
    assert kinds["manual_review"] is FlowNodeKind.MANUAL_REVIEW


def test_flow_mitigation_node_for_an_irreversible_step_a_rollback_passes() -> None:
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="Apologise", required=False),
        step("ship", "external_api", "yes", compensation="Cancel", external_id="ship_id"),
    )
    nodes = {n.id: n for n in plan(shop).flow.nodes}
    assert nodes["mitigate_mail"].kind is FlowNodeKind.MITIGATION
    assert nodes["mitigate_mail"].label == "Apologise"
    assert "undo_ship" not in nodes  # the last step is never undone
