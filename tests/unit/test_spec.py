"""Reading spec files: one clear SpecError line per bad input, the right model for good input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagaguard.exceptions import SpecError
from sagaguard.model import Idempotency, StepClass
from sagaguard.spec import load_spec, parse_spec

BASE = """\
process: shop
state_store: database
observability: [logs]
steps:
  - id: write_order
    changes: [database]
    idempotent: yes
"""


def spec_with(step_extra: str = "", top_extra: str = "") -> str:
    return BASE + step_extra + top_extra


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="shop.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("true", "yes"),
        ("false", "no"),
        ("Yes", "yes"),
        ("unknown", "unknown"),
        ('"no"', "no"),
    ],
)
def test_idempotent_accepts_yaml_booleans(literal: str, expected: str) -> None:
    """YAML's bare yes/no/true/false mean yes/no, not a type error."""
    process = parse_spec(BASE.replace("idempotent: yes", f"idempotent: {literal}"))
    assert process.steps[0].idempotent is Idempotency(expected)


def test_compensation_none_marks_the_step_irreversible() -> None:
    """`compensation: none` is the irreversible marker, not "not declared"."""
    step = parse_spec(spec_with("    compensation: none\n")).steps[0]
    assert step.step_class is StepClass.IRREVERSIBLE
    assert step.compensation_declared


def test_compensation_null_means_not_declared() -> None:
    """YAML `null` (or no key) leaves the compensation undeclared."""
    step = parse_spec(spec_with("    compensation: null\n")).steps[0]
    assert not step.compensation_declared


def test_durations_and_all_optional_fields_are_read() -> None:
    """A full step: durations parsed, texts kept, ids named."""
    step = parse_spec(
        spec_with(
            "    action: Write the order row\n"
            "    compensation: Delete the row\n"
            "    verify: Select it by operation_id\n"
            "    external_id: order_id\n"
            "    timeout: 1500ms\n"
            "    max_attempts: 5\n"
        )
    ).steps[0]
    assert step.timeout == 1.5
    assert step.max_attempts == 5
    assert step.external_id == "order_id"
    assert step.step_class is StepClass.COMPENSATABLE


def test_json_specs_are_read_too() -> None:
    """JSON is YAML: a JSON spec gives the same model."""
    data = {
        "process": "shop",
        "state_store": "key_value",
        "observability": [],
        "steps": [{"id": "a", "changes": ["email"], "idempotent": "no"}],
    }
    process = parse_spec(json.dumps(data))
    assert process.name == "shop"
    assert process.steps[0].idempotent is Idempotency.NO


def test_unknown_step_key_names_path_and_suggests_the_right_one() -> None:
    """A typo in a step key names `steps[0].key` and the closest known key."""
    message = error_of(spec_with("    compensaton: Refund\n"))
    assert message == (
        "shop.yaml: steps[0].compensaton: unknown key 'compensaton' (did you mean 'compensation'?)"
    )


def test_unknown_top_level_key_is_an_error() -> None:
    """A typo at the top level is caught too."""
    assert "stat_store: unknown key 'stat_store'" in error_of(
        spec_with(top_extra="stat_store: x\n")
    )


def test_duplicate_step_id_names_the_second_position() -> None:
    """`steps[1].id` is the offending field; the message says where the first one is."""
    message = error_of(
        spec_with(top_extra="  - id: write_order\n    changes: [email]\n    idempotent: no\n")
    )
    assert message == (
        "shop.yaml: steps[1].id: duplicate step id 'write_order' (first used at steps[0])"
    )


def test_bad_enum_value_names_field_path_and_value() -> None:
    """`steps[0].idempotent: maybe` names the field, the value and the allowed ones."""
    message = error_of(BASE.replace("idempotent: yes", "idempotent: maybe"))
    assert message.startswith("shop.yaml: steps[0].idempotent: 'maybe' is not one of")


def test_unknown_change_kind_names_the_list_position() -> None:
    """A misspelt change kind names `steps[0].changes[0]`."""
    message = error_of(BASE.replace("[database]", "[databse]"))
    assert message.startswith("shop.yaml: steps[0].changes[0]: 'databse' is not one of")


def test_bad_duration_names_field_and_value() -> None:
    """`timeout: soon` is named with its value."""
    message = error_of(spec_with("    timeout: soon\n"))
    assert (
        message == "shop.yaml: steps[0].timeout: 'soon' is not a duration (use e.g. 10s, 500ms, 2m)"
    )


def test_no_steps_is_an_error() -> None:
    """An empty step list cannot be planned."""
    text = "process: shop\nstate_store: database\nobservability: []\nsteps: []\n"
    assert error_of(text) == "shop.yaml: steps: must not be empty"


def test_missing_required_field_is_named() -> None:
    """A step without `idempotent` names the missing field."""
    message = error_of(BASE.replace("    idempotent: yes\n", ""))
    assert message == "shop.yaml: steps[0].idempotent: required field is missing"


def test_alert_route_naming_nothing_is_named() -> None:
    """`alerts.payments` (a typo of payment) is named as the offending key."""
    message = error_of(spec_with(top_extra="alerts: {payments: finance}\n"))
    assert message.startswith("shop.yaml: alerts.payments: alert route 'payments'")


def test_yaml_syntax_error_gives_line_and_column() -> None:
    """A YAML syntax error points at the line and column."""
    message = error_of("process: shop\n  bad: [\n")
    assert message.startswith("shop.yaml: line 2, column 6: invalid YAML")


def test_key_given_twice_in_a_mapping_is_an_error() -> None:
    """A key repeated in one mapping would silently override the first."""
    message = error_of(BASE + "process: other\n")
    assert message == "shop.yaml: line 8, column 1: key 'process' appears twice"


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file_is_an_error(text: str) -> None:
    """Nothing to plan: say so."""
    assert "the file is empty" in error_of(text)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string")])
def test_wrong_top_level_type_is_named(text: str, kind: str) -> None:
    """The top level must be a mapping; the error says what it got."""
    assert error_of(text).endswith(f"not {kind}")


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    """load_spec reads UTF-8 YAML from disk."""
    path = tmp_path / "shop.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert load_spec(path).steps[0].id == "write_order"


def test_load_spec_missing_file_names_it(tmp_path: Path) -> None:
    """A missing file is a SpecError naming the path, not a traceback."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(SpecError, match=r"absent\.yaml: no such file"):
        load_spec(path)


def test_load_spec_directory_is_refused(tmp_path: Path) -> None:
    """A directory is not a spec."""
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)


def test_load_spec_non_utf8_is_refused(tmp_path: Path) -> None:
    """Binary junk is named as not UTF-8."""
    path = tmp_path / "junk.yaml"
    path.write_bytes(b"process: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)


JSON_SPEC = {
    "process": "shop",
    "state_store": "database",
    "observability": [],
    "steps": [{"id": "a", "changes": ["email"], "idempotent": "no"}],
}


def test_load_spec_reads_a_json_file_as_json(tmp_path: Path) -> None:
    """A .json spec gives the same model as its YAML twin."""
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(JSON_SPEC, indent=2), encoding="utf-8")
    assert load_spec(path) == parse_spec(json.dumps(JSON_SPEC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"steps":[1,]}', "shop.json: line 1, column 13: invalid JSON: Expecting value"),
        (
            '{\n  "process": "shop",\n  // a comment\n}',
            "shop.json: line 3, column 3: invalid JSON: Expecting property name enclosed in "
            "double quotes",
        ),
        ("process: shop\n", "shop.json: line 1, column 1: invalid JSON: Expecting value"),
        (
            '{"process": "a", "process": "b"}',
            "shop.json: invalid JSON: key 'process' appears twice",
        ),
        ('{"timeout": NaN}', "shop.json: invalid JSON: NaN is not a JSON value"),
        ("null", "shop.json: the top level must be an object with `process` and `steps`, not null"),
        ("[1, 2]", "shop.json: the top level must be an object with `process` and `steps`, not an"),
    ],
    ids=["trailing_comma", "comment", "yaml_text", "key_twice", "nan", "null", "array"],
)
def test_a_json_file_must_be_strict_json(tmp_path: Path, text: str, expected: str) -> None:
    """What YAML would accept leniently is an error in a .json spec, with line and column."""
    path = tmp_path / "shop.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert message.startswith(str(tmp_path / expected)), message
    assert "YAML" not in message


def test_a_value_that_should_be_a_mapping_never_names_a_python_class() -> None:
    """The model's classes (Step, Defaults) are not words of the spec."""
    base = "process: shop\nstate_store: database\nobservability: []\n"
    step = "{id: a, changes: [none], idempotent: yes}"
    with pytest.raises(SpecError) as raised:
        parse_spec(base + f"steps: [{step}, notastep]\n")
    assert str(raised.value) == "<spec>: steps[1]: 'notastep': must be a mapping (a step)"
    with pytest.raises(SpecError) as raised:
        parse_spec(base + f"defaults: 3\nsteps: [{step}]\n")
    assert str(raised.value) == "<spec>: defaults: 3: must be a mapping (the process defaults)"
    assert "instance of" not in str(raised.value)
