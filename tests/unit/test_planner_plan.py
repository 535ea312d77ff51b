"""The plan as a public JSON contract: keys, round trip, strictness, documentation, wording."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sagaguard.model import Process
from sagaguard.planner import PLAN_FORMAT, Plan, plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "plan-json.md"


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


CHECKOUT = Process.model_validate(
    {
        "process": "checkout",
        "description": "Order checkout",
        "state_store": "database",
        "observability": ["logs", "metrics"],
        "alerts": {"default": "shop-oncall", "payment": "finance"},
        "steps": [
            step("create_order", compensation="Mark the order cancelled", external_id="order_id"),
            step(
                "reserve_stock",
                "reservation",
                compensation="Release the reservation",
                external_id="reservation_id",
                timeout="5s",
            ),
            step(
                "charge_payment",
                "payment",
                "unknown",
                compensation="Refund the charge",
                verify="Look the charge up by idempotency key",
                external_id="payment_id",
                timeout="10s",
            ),
            step(
                "book_delivery",
                "external_api",
                compensation="Cancel the delivery draft",
                external_id="delivery_id",
            ),
            step("send_email", "email", "no", compensation="none"),
        ],
    }
)

TOP_KEYS = {
    "format",
    "ready",
    "process",
    "pivot",
    "steps",
    "rollback_chain",
    "rollback_sequences",
    "rollback_failure_policy",
    "decision_matrix",
    "tests",
    "checklist",
    "findings",
    "example_states",
    "flow",
}


def dumped() -> dict[str, Any]:
    return plan(CHECKOUT).model_dump(mode="json")


def test_top_level_keys_and_format() -> None:
    """The seven parts plus header, readiness, pivot, example states and flow; format v2."""
    data = dumped()
    assert set(data) == TOP_KEYS
    assert data["format"] == PLAN_FORMAT == "sagaguard.plan/v2"
    assert data["process"]["name"] == "checkout"


def test_issue_key_names_are_used_verbatim() -> None:
    """`class`, `failed_step`, `compensate`, `situation`, ... as the issue names them."""
    data = dumped()
    assert {"id", "class"} <= set(data["steps"][0])
    assert {"failed_step", "recovery", "rollback_from"} <= set(data["rollback_sequences"][0])
    assert set(data["decision_matrix"][0]) >= {"step", "situation", "decision", "reason"}
    assert set(data["tests"][0]) >= {"id", "category"}
    assert set(data["checklist"][0]) >= {"area"}
    assert data["steps"][2]["class"] == "compensatable"
    assert "step_class" not in json.dumps(data)


def test_json_round_trip_gives_the_same_plan() -> None:
    """A stored plan validates back into an equal Plan."""
    original = plan(CHECKOUT)
    again = Plan.model_validate(json.loads(json.dumps(original.model_dump(mode="json"))))
    assert again == original


def test_unknown_keys_are_refused_when_reading_a_plan() -> None:
    """The contract is closed: an extra key is an error, not silently dropped."""
    data = dumped()
    data["steps"][0]["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        Plan.model_validate(data)


def test_plan_is_frozen() -> None:
    """Renderers cannot change the plan they format."""
    shop = plan(CHECKOUT)
    with pytest.raises(ValidationError):
        shop.format = "other"  # type: ignore[misc]


def test_planning_is_deterministic() -> None:
    """Same process in, same plan out (golden files depend on it)."""
    assert dumped() == dumped()


def collect_keys(value: Any, keys: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            keys.add(key)
            collect_keys(inner, keys)
    elif isinstance(value, list):
        for inner in value:
            collect_keys(inner, keys)
    return keys


def test_every_json_key_is_documented() -> None:
    """docs/plan-json.md names every key the plan emits."""
    documented = set(re.findall(r"`([a-z_]+)`", DOC.read_text(encoding="utf-8")))
    data = dumped()
    keys = collect_keys(data, set()) - set(data["process"]["alerts"])
    assert keys - documented == set()


def test_every_finding_code_is_documented() -> None:
    """Each SG code of the planner has a row in docs/plan-json.md."""
    from sagaguard.planner import FINDING_CODES

    text = DOC.read_text(encoding="utf-8")
    for code in FINDING_CODES:
        assert f"| `{code}` |" in text


def test_every_text_names_something_of_this_process() -> None:
    """No generic advice: each checklist item, finding and test names a step, id, route or the
    process itself."""
    shop = plan(CHECKOUT)
    names = {s.id for s in CHECKOUT.steps} | {"checkout", "finance", "shop-oncall"}
    names |= {s.external_id for s in CHECKOUT.steps if s.external_id}
    texts = [f"{i.title} {i.detail}" for i in shop.checklist]
    texts += [f.message for f in shop.findings]
    texts += [t.scenario for t in shop.tests]
    texts += [seq.summary for seq in shop.rollback_sequences]
    texts += [e.reason for e in shop.decision_matrix if e.situation.value != "duplicate_request"]
    for text in texts:
        assert any(name in text for name in names), text
    joined = " ".join(texts).lower()
    assert "check the docs" not in joined


def test_a_plan_with_an_error_finding_is_not_ready() -> None:
    """`ready` is false exactly when a finding is an error."""
    assert plan(CHECKOUT).ready is not plan(CHECKOUT).has_errors
    blind = Process.model_validate(
        {
            "process": "p",
            "state_store": "database",
            "observability": [],
            "alerts": {"default": "ops"},
            "steps": [step("charge", "payment", "no", compensation="Refund")],
        }
    )
    assert plan(blind).model_dump(mode="json")["ready"] is False
