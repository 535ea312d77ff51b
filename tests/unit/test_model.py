"""The process model: step classes, durations, defaults, alert routing, validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sagaguard.model import (
    ChangeKind,
    Idempotency,
    Observability,
    Process,
    Step,
    StepClass,
    parse_duration,
)


def make_step(**fields: Any) -> Step:
    data: dict[str, Any] = {"id": "s", "changes": ["database"], "idempotent": "yes"}
    data.update(fields)
    return Step.model_validate(data)


def make_process(*steps: dict[str, Any], **fields: Any) -> Process:
    data: dict[str, Any] = {
        "process": "p",
        "state_store": "database",
        "observability": [],
        "steps": list(steps) or [{"id": "a", "changes": ["database"], "idempotent": "yes"}],
    }
    data.update(fields)
    return Process.model_validate(data)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 3 s ", 3.0),
        ("7", 7.0),
        (4, 4.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_reads_units_and_bare_seconds(text: Any, seconds: float) -> None:
    """Durations accept ms, s, m, h and bare numbers of seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "10 days", "", "-1s", "0", 0, -3, True, None, [1]])
def test_parse_duration_rejects_nonsense_zero_and_booleans(bad: Any) -> None:
    """A duration must be positive and readable; YAML booleans are not durations."""
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration(bad)


def test_step_timeout_is_parsed_from_text() -> None:
    """`timeout: 10s` becomes 10.0 seconds on the model."""
    assert make_step(timeout="10s").timeout == 10.0


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        ({"changes": ["none"]}, StepClass.READ_ONLY),
        ({"compensation": "Refund it"}, StepClass.COMPENSATABLE),
        ({"compensation": "none"}, StepClass.IRREVERSIBLE),
        ({"compensation": "None "}, StepClass.IRREVERSIBLE),
        ({}, StepClass.IRREVERSIBLE),
    ],
    ids=["read_only", "compensatable", "none", "none_any_case", "undeclared"],
)
def test_step_class_follows_changes_and_compensation(
    fields: dict[str, Any], cls: StepClass
) -> None:
    """Read-only, compensatable, or irreversible (undeclared counts as irreversible)."""
    assert make_step(**fields).step_class is cls


def test_irreversible_and_undeclared_are_told_apart() -> None:
    """`compensation: none` is a declaration; an absent compensation is not."""
    declared = make_step(compensation="none")
    undeclared = make_step()
    assert declared.irreversible
    assert declared.compensation_declared
    assert not undeclared.irreversible
    assert not undeclared.compensation_declared


@pytest.mark.parametrize(
    ("fields", "safe"),
    [
        ({"changes": ["none"], "idempotent": "no"}, True),
        ({"idempotent": "yes"}, True),
        ({"idempotent": "no"}, False),
        ({"idempotent": "unknown"}, False),
    ],
)
def test_safe_to_repeat_only_for_read_only_or_idempotent(
    fields: dict[str, Any], safe: bool
) -> None:
    """A repeat is safe only when the step changes nothing or dedupes on its key."""
    assert make_step(**fields).safe_to_repeat is safe


def test_action_text_is_derived_when_absent() -> None:
    """A missing action is derived from the id and what the step changes."""
    assert make_step(id="reserve_stock", changes=["reservation"]).action_text == (
        "Reserve stock: reserves or holds capacity"
    )
    assert make_step(id="read_cart", changes=["none"]).action_text == (
        "Read cart: reads data and changes nothing"
    )
    assert make_step(action="Charge the card").action_text == "Charge the card"


@pytest.mark.parametrize(
    ("changes", "derived"),
    [
        (["payment"], "Pay: charges or moves money"),
        (["email"], "Pay: sends an email"),
        (["queue"], "Pay: publishes a message"),
        (["external_api"], "Pay: calls an external service"),
        (["database"], "Pay: writes to the database"),
        (["database", "queue"], "Pay: writes to the database and publishes a message"),
    ],
)
def test_derived_action_says_what_the_step_does_per_change_kind(
    changes: list[str], derived: str
) -> None:
    """The derived text names the step and says what it does, not just which kinds it has."""
    assert make_step(id="pay", changes=changes).action_text == derived


def test_none_cannot_be_combined_with_other_changes() -> None:
    """Read-only and side-effecting at once is a contradiction."""
    with pytest.raises(ValidationError, match="cannot be combined"):
        make_step(changes=["none", "email"])


def test_a_change_kind_listed_twice_is_rejected() -> None:
    """`changes: [email, email]` is a typo, not two effects."""
    with pytest.raises(ValidationError, match="listed twice"):
        make_step(changes=["email", "email"])


@pytest.mark.parametrize("field", ["action", "compensation", "verify", "mitigation"])
def test_blank_texts_are_rejected(field: str) -> None:
    """An empty text would read as declared but say nothing."""
    with pytest.raises(ValidationError, match="must not be empty"):
        make_step(**{field: "  "})


def test_unknown_step_key_is_rejected() -> None:
    """A misspelt key must not pass silently."""
    with pytest.raises(ValidationError, match="compensaton"):
        make_step(compensaton="Refund")


@pytest.mark.parametrize("bad_id", ["Charge", "1step", "charge-payment", ""])
def test_step_id_pattern(bad_id: str) -> None:
    """Step ids are `[a-z][a-z0-9_]*`."""
    with pytest.raises(ValidationError):
        make_step(id=bad_id)


def test_yaml_booleans_mean_yes_and_no_for_idempotent() -> None:
    """YAML reads a bare yes/no as a boolean; the model turns it back into yes/no."""
    assert make_step(idempotent=True).idempotent is Idempotency.YES
    assert make_step(idempotent=False).idempotent is Idempotency.NO


def test_duplicate_step_ids_are_rejected_with_their_position() -> None:
    """Two steps with one id: the error names the second one's position and the first."""
    with pytest.raises(
        ValidationError, match=r"duplicate step id 'a' \(first used at steps\[0\]\)"
    ):
        make_process(
            {"id": "a", "changes": ["database"], "idempotent": "yes"},
            {"id": "a", "changes": ["email"], "idempotent": "no"},
        )


@pytest.mark.parametrize("key", ["default", "payment", "email", "a"])
def test_alert_routes_may_name_default_a_change_kind_or_a_step(key: str) -> None:
    """Valid routing keys: `default`, a change kind, a step id."""
    assert make_process(alerts={key: "team"}).alerts == {key: "team"}


def test_alert_route_naming_nothing_is_rejected() -> None:
    """A route key that is none of default / change kind / step id is a typo."""
    with pytest.raises(ValidationError, match="alert route 'payments'"):
        make_process(alerts={"payments": "finance"})


def test_alert_route_precedence_step_then_payment_then_kind_then_default() -> None:
    """Step id beats the payment route, which beats other kinds, which beat the default."""
    process = make_process(
        {"id": "charge", "changes": ["email", "payment"], "idempotent": "no"},
        {"id": "mail", "changes": ["email"], "idempotent": "no"},
        {"id": "write", "changes": ["database"], "idempotent": "yes"},
        {"id": "special", "changes": ["payment"], "idempotent": "no"},
        alerts={"default": "oncall", "payment": "finance", "email": "crm", "special": "boss"},
    )
    assert process.alert_route(process.step("charge")) == "finance"
    assert process.alert_route(process.step("mail")) == "crm"
    assert process.alert_route(process.step("write")) == "oncall"
    assert process.alert_route(process.step("special")) == "boss"
    assert process.alert_route(None) == "oncall"


def test_alert_route_is_none_without_any_matching_key() -> None:
    """No default and no matching key: nobody is routed."""
    process = make_process(alerts={"payment": "finance"})
    assert process.alert_route(process.steps[0]) is None


def test_step_limits_fall_back_to_process_defaults() -> None:
    """A step without its own timeout or attempts uses the process defaults."""
    process = make_process(
        {"id": "a", "changes": ["database"], "idempotent": "yes", "timeout": "5s"},
        {"id": "b", "changes": ["database"], "idempotent": "yes", "max_attempts": 7},
        defaults={"timeout": "1m", "max_attempts": 2},
    )
    a, b = process.steps
    assert (process.timeout_for(a), process.max_attempts_for(a)) == (5.0, 2)
    assert (process.timeout_for(b), process.max_attempts_for(b)) == (60.0, 7)


def test_process_needs_at_least_one_step() -> None:
    """A process with no steps cannot be planned."""
    with pytest.raises(ValidationError):
        Process.model_validate(
            {"process": "p", "state_store": "database", "observability": [], "steps": []}
        )


def test_numeric_version_becomes_text_and_observability_is_deduplicated() -> None:
    """`version: 2` is the string "2"; repeated observability entries collapse."""
    process = make_process(version=2, observability=["logs", "logs", "alerts"])
    assert process.version == "2"
    assert process.observability == (Observability.LOGS, Observability.ALERTS)


def test_model_is_frozen() -> None:
    """Plans are built from a process that cannot change under them."""
    step = make_step()
    with pytest.raises(ValidationError):
        step.id = "other"  # type: ignore[misc]


def test_index_and_step_lookup() -> None:
    """Steps are found by id; positions are 0-based."""
    process = make_process(
        {"id": "a", "changes": ["database"], "idempotent": "yes"},
        {"id": "b", "changes": [ChangeKind.EMAIL.value], "idempotent": "no"},
    )
    assert process.index("b") == 1
    assert process.step("b").changes == (ChangeKind.EMAIL,)
    with pytest.raises(KeyError):
        process.step("c")
