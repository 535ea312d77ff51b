"""Reading a process spec (YAML or JSON, format v1) into the model.

Every problem becomes one :class:`SpecError` line that names the file, the field path
(``steps[2].idempotent``) and the offending value, or the line and column of a YAML or JSON
syntax error, so a person can fix the spec without reading a traceback.

A ``*.json`` file is parsed as JSON, strictly: YAML would accept what JSON does not (a
trailing comma, a comment, an unquoted word), so a broken JSON spec would pass here and
fail in every other tool that reads it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from sagaguard.exceptions import SpecError
from sagaguard.jsontext import NotJSONError, loads_strict
from sagaguard.model import (
    DuplicateStepError,
    Process,
    SecondPivotError,
    Step,
    UnknownAlertRouteError,
)
from sagaguard.textfile import UnreadableFileError, read_text_file

__all__ = [
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_VALUES",
    "Syntax",
    "clip",
    "load_spec",
    "parse_spec",
    "shown",
]

Syntax = Literal["yaml", "json"]
"""How spec text is written: YAML (which reads JSON too, leniently) or strict JSON."""


MAX_SPEC_VALUES = 100_000
"""The most values (every key, item and scalar, once YAML aliases are expanded) a spec holds."""
MAX_SPEC_DEPTH = 32
"""The deepest nesting a spec may use; a real one needs five levels."""

# libyaml parses ten times faster than pure Python, and bounds nesting by itself.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader that refuses a key given twice in one mapping (a silent typo otherwise)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        mark = key_node.start_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        if not isinstance(key, Hashable):
            # `? [a, b]: x`: YAML allows a list or a mapping as a key; a spec never does.
            raise SpecError(f"{where}: a key must be a plain value, not {_type_name(key)}")
        if key in seen:
            raise SpecError(f"{where}: key {shown(key)} appears twice")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def shown(value: Any, *, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error quotes a value, not a megabyte."""
    return clip(repr(value), limit)


def clip(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def load_spec(path: str | Path) -> Process:
    """Read and validate a spec file; raise :class:`SpecError` with one clear line.

    Only a regular file of at most 16 MiB is read (a FIFO would block, a device never end).
    """
    source = Path(path)
    try:
        text = read_text_file(source)
    except UnreadableFileError as exc:
        raise SpecError(f"{source}: {exc}") from None
    syntax: Syntax = "json" if source.suffix.lower() == ".json" else "yaml"
    return parse_spec(text, source=str(source), syntax=syntax)


def parse_spec(text: str, *, source: str = "<spec>", syntax: Syntax = "yaml") -> Process:
    """Parse spec text and validate it into a :class:`Process`.

    ``syntax="yaml"`` (the default) also reads JSON, as YAML is a superset of it;
    ``syntax="json"`` accepts strict JSON only, as ``load_spec`` does for a ``.json`` file.
    """
    if not text.strip():
        raise SpecError(
            f"{source}: the file is empty; expected a mapping with `process` and `steps`"
        )
    data = _parse_json(text, source) if syntax == "json" else _parse_yaml(text, source)
    _check_shape(data, source)
    if data is None and syntax == "json":
        raise SpecError(
            f"{source}: the top level must be an object with `process` and `steps`, not null"
        )
    if data is None:
        raise SpecError(
            f"{source}: the file is empty; expected a mapping with `process` and `steps`"
        )
    if not isinstance(data, Mapping):
        # Each syntax's own words: a JSON reader thinks in objects and arrays.
        mapping, got = (
            ("an object", _json_type_name(data))
            if syntax == "json"
            else (
                "a mapping",
                _type_name(data),
            )
        )
        raise SpecError(
            f"{source}: the top level must be {mapping} with `process` and `steps`, not {got}"
        )
    return validate_spec(data, source=source)


def _parse_json(text: str, source: str) -> Any:
    try:
        return loads_strict(text, unique_keys=True)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except NotJSONError as exc:
        raise SpecError(f"{source}: invalid JSON: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: invalid JSON: nested too deeply") from None


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:
        # Only the pure-Python parser gets here; libyaml stops at 1000 levels itself.
        raise SpecError(f"{source}: invalid YAML: nested too deeply") from None
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{source}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: invalid YAML: {exc}") from None


def _check_shape(data: Any, source: str) -> None:
    """Refuse data too large or too deep for a spec, before anything walks it recursively.

    YAML aliases let a few lines stand for a billion values (each alias reuses one object,
    so parsing is cheap, but validating or quoting it is not): the values are counted as
    they would be expanded, and the count stops at the bound.
    """
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_SPEC_VALUES:
            raise SpecError(
                f"{source}: holds more than {MAX_SPEC_VALUES} values once YAML aliases are "
                "expanded; a spec is far smaller"
            )
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(f"{source}: nested more than {MAX_SPEC_DEPTH} levels deep")
        if isinstance(value, Mapping):
            for key, item in value.items():
                stack.append((key, depth + 1))
                stack.append((item, depth + 1))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend((item, depth + 1) for item in value)


def validate_spec(data: Mapping[str, Any], *, source: str = "<spec>") -> Process:
    """Validate already-parsed spec data into a :class:`Process`."""
    try:
        return Process.model_validate(dict(data))
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe_validation_error(exc, data)}") from None


def describe_validation_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    """One line for the first validation problem: field path, offending value, what is wanted."""
    errors = exc.errors()
    # A bad list item also fails its list ("too short"): report the leaf, count only leaves.
    leaves = [
        e
        for e in errors
        if not any(
            o is not e and o["loc"][: len(e["loc"])] == e["loc"] and len(o["loc"]) > len(e["loc"])
            for o in errors
        )
    ]
    error = leaves[0]
    more = len(leaves) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return clip(_describe(error, data), 400) + suffix


def _describe(error: ErrorDetails, data: Mapping[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, DuplicateStepError):
        return f"steps[{cause.index}].id: {cause}"
    if isinstance(cause, SecondPivotError):
        return f"steps[{cause.index}].pivot: {cause}"
    if isinstance(cause, UnknownAlertRouteError):
        return f"alerts.{cause.key}: {cause}"
    loc = _strip_union_tags(error["loc"])
    path = format_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key {shown(loc[-1])}{_did_you_mean(loc, data)}"
    if kind == "missing":
        return f"{path}: required field is missing"
    value = error.get("input")
    if kind == "enum":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{path}: {shown(value)} is not one of {expected}"
    if kind in ("too_short",) and isinstance(value, Sequence) and not value:
        return f"{path}: must not be empty"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be a valid tuple", "must be a list")
    # A nested model's error names its Python class; say what the spec calls it instead.
    message = _MODEL_INSTANCE.sub(_as_spec_mapping, message)
    message = message.replace("Input should be a valid dictionary", "must be a mapping")
    message = message.replace("Input should be", "must be")
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        message = f"must match {pattern}"
    if _printable(value) and not message.startswith(repr(value)):
        return f"{path}: {shown(value)}: {clip(message, 200)}"
    return f"{path}: {clip(message, 200)}"


def _strip_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic adds a union member's type name to the location; it means nothing to a user.
    return tuple(part for part in loc if not (isinstance(part, str) and _UNION_TAG.match(part)))


_MODEL_INSTANCE = re.compile(r"Input should be a valid dictionary or instance of (\w+)")
_MODEL_WORDS = {
    "Step": "a step",
    "Defaults": "the process defaults",
    "Process": "a process",
    "Signals": "success, failure, refused, in_progress, unknown",
}


def _as_spec_mapping(match: re.Match[str]) -> str:
    word = _MODEL_WORDS.get(match.group(1))
    return f"must be a mapping ({word})" if word else "must be a mapping"


_UNION_TAG = re.compile(r"^(str|int|float|bool|none|function-\w+\[.*\]|.*\[.*\])$")


def format_path(loc: Sequence[int | str]) -> str:
    """``('steps', 2, 'idempotent')`` -> ``steps[2].idempotent``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = "process" if part == "name" and not path else clip(str(part), 40)
            path += f".{name}" if path else name
    return path or "(top level)"


_KNOWN_STEP_KEYS = list(Step.model_fields)
_KNOWN_TOP_KEYS = [info.alias or name for name, info in Process.model_fields.items()]


def _did_you_mean(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    key = str(loc[-1])
    pool = _KNOWN_STEP_KEYS if len(loc) >= 3 and loc[0] == "steps" else _KNOWN_TOP_KEYS
    close = difflib.get_close_matches(key, pool, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _printable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _type_name(value: Any) -> str:
    names = {
        list: "a list",
        dict: "a mapping",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }
    return names.get(type(value), type(value).__name__)


def _json_type_name(value: Any) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "a boolean" if isinstance(value, bool) else type(value).__name__)
