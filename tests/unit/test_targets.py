"""How ``load_process`` resolves a target: a spec file, or a coded saga as ``module:attribute``.

Every failure must be a one-line :class:`SpecError` / :class:`PlanError` that names the
target, because the CLI prints it as is.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sagaguard.exceptions import PlanError, SpecError
from sagaguard.model import Process
from sagaguard.targets import is_import_target, load_process

SPEC_YAML = textwrap.dedent(
    """\
    process: signup
    state_store: database
    observability: []
    steps:
      - id: create_user
        changes: [database]
        idempotent: yes
        compensation: Delete the user row
      - id: send_welcome
        changes: [email]
        idempotent: no
        compensation: none
    """
)

_counter = itertools.count()

WriteModule = Callable[[str], str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write a module into a fresh working directory; returns its (unique) import name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    names: list[str] = []

    def write(source: str) -> str:
        name = f"sagaguard_target_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


SAGA_SOURCE = f"""
    from sagaguard import parse_spec

    PROCESS = parse_spec({SPEC_YAML!r}, source="inline")

    class Saga:
        process = PROCESS

    saga = Saga()

    class Holder:
        inner = saga

    not_a_process = 42
"""


def test_an_existing_file_is_loaded_as_a_spec(tmp_path: Path) -> None:
    spec = tmp_path / "signup.yaml"
    spec.write_text(SPEC_YAML, encoding="utf-8")
    process = load_process(str(spec))
    assert process.name == "signup"
    assert [s.id for s in process.steps] == ["create_user", "send_welcome"]


def test_a_path_object_is_always_a_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_process(tmp_path / "mod:attr")


def test_an_existing_file_named_like_a_target_stays_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop:saga").write_text(SPEC_YAML, encoding="utf-8")
    assert load_process("shop:saga").name == "signup"


def test_a_missing_file_is_reported_as_such() -> None:
    with pytest.raises(SpecError, match=r"^nowhere/saga\.yaml: no such file$"):
        load_process("nowhere/saga.yaml")


def test_a_module_attribute_that_is_a_process_is_returned(write_module: WriteModule) -> None:
    name = write_module(SAGA_SOURCE)
    process = load_process(f"{name}:PROCESS")
    assert isinstance(process, Process)
    assert process.name == "signup"


def test_an_object_with_a_process_attribute_gives_that_process(
    write_module: WriteModule,
) -> None:
    name = write_module(SAGA_SOURCE)
    assert load_process(f"{name}:saga") is load_process(f"{name}:PROCESS")


def test_a_dotted_attribute_path_is_followed(write_module: WriteModule) -> None:
    name = write_module(SAGA_SOURCE)
    assert load_process(f"{name}:Holder.inner").name == "signup"


def test_the_current_directory_is_searched_for_the_module(write_module: WriteModule) -> None:
    name = write_module(SAGA_SOURCE)
    assert load_process(f"{name}:PROCESS").name == "signup"
    assert str(Path.cwd()) in sys.path


def test_a_missing_module_names_the_target() -> None:
    with pytest.raises(PlanError, match=r"^no_such_module_xyz:saga: no module named"):
        load_process("no_such_module_xyz:saga")


def test_a_missing_attribute_names_module_and_attribute(write_module: WriteModule) -> None:
    name = write_module(SAGA_SOURCE)
    with pytest.raises(PlanError, match=rf"^{name}:sag: module '{name}' has no attribute 'sag'$"):
        load_process(f"{name}:sag")


def test_a_missing_nested_attribute_names_where_it_was_looked_for(
    write_module: WriteModule,
) -> None:
    name = write_module(SAGA_SOURCE)
    with pytest.raises(PlanError, match=r"Holder has no attribute 'outer'$"):
        load_process(f"{name}:Holder.outer")


def test_an_attribute_of_the_wrong_type_is_refused(write_module: WriteModule) -> None:
    name = write_module(SAGA_SOURCE)
    with pytest.raises(PlanError, match=r"is of type 'int', not a sagaguard Process"):
        load_process(f"{name}:not_a_process")


def test_a_module_that_fails_on_import_is_one_plan_error(write_module: WriteModule) -> None:
    name = write_module("raise ValueError('database url not set')\n")
    with pytest.raises(PlanError) as caught:
        load_process(f"{name}:saga")
    message = str(caught.value)
    assert message.startswith(f"{name}:saga: importing '{name}' failed: ValueError")
    assert "database url not set" in message
    assert "\n" not in message


def test_a_module_that_imports_a_missing_dependency_says_which(
    write_module: WriteModule,
) -> None:
    name = write_module("import no_such_dependency_xyz\n")
    with pytest.raises(PlanError, match=r"importing .* failed: No module named 'no_such_depend"):
        load_process(f"{name}:saga")


def test_a_syntax_error_gives_file_and_line(write_module: WriteModule) -> None:
    name = write_module("x = 1\ndef broken(:\n")
    with pytest.raises(PlanError, match=rf"syntax error in .*{name}\.py, line 2"):
        load_process(f"{name}:saga")


def test_a_saga_whose_process_cannot_be_built_is_one_plan_error(
    write_module: WriteModule,
) -> None:
    name = write_module(
        """
        class Saga:
            @property
            def process(self):
                raise LookupError("step charge has no handler")

        saga = Saga()
        """
    )
    with pytest.raises(PlanError, match=r"reading its process failed: LookupError: step charge"):
        load_process(f"{name}:saga")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shop.checkout:saga", True),
        ("shop:Saga.process", True),
        ("saga.yaml", False),
        ("specs/shop:saga", False),
        ("C:\\specs\\saga.yaml", False),
        ("shop:", False),
        (":saga", False),
        ("1shop:saga", False),
    ],
)
def test_what_reads_as_an_import_target(text: str, expected: bool) -> None:
    assert is_import_target(text) is expected
