"""How ``load_saga`` turns a target into a runnable saga, and how it refuses one that cannot run.

A spec file binds code by import path relative to its own folder; ``module:attr`` names a
coded saga. Every refusal is one :class:`SagaGuardError` line naming the target, because the
CLI prints it as is.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sagaguard.engine import Saga
from sagaguard.engine.loading import load_saga, load_sagas
from sagaguard.exceptions import PlanError, SagaDefinitionError, SagaGuardError, SpecError

_counter = itertools.count()

Write = Callable[[str], str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Write]:
    """Write a module into a fresh working directory; returns its unique import name."""
    monkeypatch.chdir(tmp_path)
    names: list[str] = []

    def write(source: str) -> str:
        name = f"sagaguard_loading_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
    sys.path[:] = [p for p in sys.path if p != str(tmp_path)]


HANDLERS = """
    def create_user(ctx):
        return {"user_id": "u1"}

    def delete_user(ctx):
        return None

    def send_welcome(ctx):
        return None
"""


def _spec(module: str, *, handlers: bool = True) -> str:
    bind = handlers
    return textwrap.dedent(
        f"""\
        process: signup
        state_store: database
        observability: [logs]
        steps:
          - id: create_user
            changes: [database]
            idempotent: yes
            compensation: Delete the user row
            {"handler: " + module + ":create_user" if bind else ""}
            {"compensate: " + module + ":delete_user" if bind else ""}
          - id: send_welcome
            changes: [email]
            idempotent: no
            compensation: none
            {"handler: " + module + ":send_welcome" if bind else ""}
        """
    )


def test_spec_binding_code_loads_with_its_folder_on_the_import_path(
    write_module: Write, tmp_path: Path
) -> None:
    """Handlers are imported from the spec's own folder, whatever the working directory."""
    module = write_module(HANDLERS)
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    (tmp_path / f"{module}.py").rename(spec_dir / f"{module}.py")
    spec = spec_dir / "signup.yaml"
    spec.write_text(_spec(module), encoding="utf-8")

    saga = load_saga(str(spec))

    assert saga.process.name == "signup"
    assert saga.handlers("create_user").call.__module__ == module
    assert saga.handlers("create_user").compensate is not None
    assert saga.handlers("send_welcome").compensate is None


def test_spec_without_handlers_is_plan_only(write_module: Write, tmp_path: Path) -> None:
    """A spec that binds no code can be planned but not run: one line says so and names it."""
    write_module(HANDLERS)
    spec = tmp_path / "plain.yaml"
    spec.write_text(_spec("unused", handlers=False), encoding="utf-8")

    with pytest.raises(SagaDefinitionError) as caught:
        load_saga(str(spec))

    message = str(caught.value)
    assert "\n" not in message
    assert str(spec) in message
    assert "steps[0].handler" in message
    assert "can be planned but not run" in message


def test_handler_in_a_missing_module_names_the_spec_and_field(tmp_path: Path) -> None:
    """An import path that does not resolve names the spec and the step field."""
    spec = tmp_path / "broken.yaml"
    spec.write_text(_spec("no_such_module_for_sagaguard"), encoding="utf-8")

    with pytest.raises(SagaDefinitionError) as caught:
        load_saga(spec)

    assert str(spec) in str(caught.value)
    assert "steps[0].handler" in str(caught.value)
    assert "no_such_module_for_sagaguard" in str(caught.value)


def test_handler_module_that_fails_to_import_is_reported_not_raised(
    write_module: Write, tmp_path: Path
) -> None:
    """The user's module raising at import time becomes one line naming the spec and error."""
    module = write_module("raise RuntimeError('database URL not set')\n")
    spec = tmp_path / "signup.yaml"
    spec.write_text(_spec(module), encoding="utf-8")

    with pytest.raises(PlanError) as caught:
        load_saga(spec)

    assert str(spec) in str(caught.value)
    assert "RuntimeError: database URL not set" in str(caught.value)


def test_handler_module_with_a_syntax_error_names_the_line(
    write_module: Write, tmp_path: Path
) -> None:
    """A syntax error in a handler module is reported with its file and line."""
    module = write_module("def create_user(ctx:\n    pass\n")
    spec = tmp_path / "signup.yaml"
    spec.write_text(_spec(module), encoding="utf-8")

    with pytest.raises(PlanError) as caught:
        load_saga(spec)

    assert "syntax error" in str(caught.value)
    assert f"{module}.py" in str(caught.value)


def test_import_target_naming_a_saga_returns_that_saga(write_module: Write) -> None:
    """``module:attr`` naming a coded saga returns the very object, ready to run."""
    module = write_module(
        """
        from sagaguard.engine import Saga

        saga = Saga("signup")

        @saga.step(changes=["database"], idempotent="yes")
        def create_user(ctx):
            return {"user_id": "u1"}

        @create_user.compensate
        def delete_user(ctx):
            '''Delete the user row.'''
        """
    )

    saga = load_saga(f"{module}:saga")

    assert isinstance(saga, Saga)
    assert saga is sys.modules[module].saga


def test_import_target_naming_a_saga_missing_compensation_code_is_refused(
    write_module: Write,
) -> None:
    """A coded saga that declares a compensation but binds none cannot run."""
    module = write_module(
        """
        from sagaguard.engine import Saga

        saga = Saga("signup")

        @saga.step(changes=["database"], idempotent="yes", compensation="Delete the row")
        def create_user(ctx):
            return None
        """
    )

    with pytest.raises(SagaDefinitionError) as caught:
        load_saga(f"{module}:saga")

    assert f"{module}:saga" in str(caught.value)
    assert "create_user" in str(caught.value)


def test_import_target_naming_a_plain_process_is_plan_only(write_module: Write) -> None:
    """A process model with no code bound is refused with the plan-only line."""
    spec_text = _spec("unused", handlers=False)
    module = write_module(
        f"""
        from sagaguard import parse_spec

        process = parse_spec({spec_text!r})
        """
    )

    with pytest.raises(SagaDefinitionError, match="can be planned but not run"):
        load_saga(f"{module}:process")


def test_import_target_naming_something_else_names_its_type(write_module: Write) -> None:
    """An attribute that is neither a saga nor a process is refused with its type."""
    module = write_module("answer = 42\n")

    with pytest.raises(SagaGuardError) as caught:
        load_saga(f"{module}:answer")

    assert "int" in str(caught.value)


def test_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    """A path that does not exist is reported as a missing spec file."""
    with pytest.raises(SpecError, match="no such file"):
        load_saga(str(tmp_path / "nope.yaml"))


def test_two_targets_defining_one_process_are_refused(write_module: Write, tmp_path: Path) -> None:
    """A worker given the same process twice would drive it with either: refused, both named."""
    module = write_module(HANDLERS)
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(_spec(module), encoding="utf-8")
    second.write_text(_spec(module), encoding="utf-8")

    with pytest.raises(SagaDefinitionError) as caught:
        load_sagas([str(first), str(second)])

    assert str(first) in str(caught.value)
    assert str(second) in str(caught.value)


def test_several_targets_load_in_order(write_module: Write, tmp_path: Path) -> None:
    """Distinct processes load side by side for one worker."""
    module = write_module(HANDLERS)
    spec = tmp_path / "signup.yaml"
    spec.write_text(_spec(module), encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text(_spec(module).replace("process: signup", "process: onboarding"), "utf-8")

    sagas = load_sagas([str(spec), str(other)])

    assert [s.process.name for s in sagas] == ["signup", "onboarding"]
