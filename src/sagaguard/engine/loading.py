"""Turning what a person types into a runnable saga: a spec that binds code, or ``module:attr``.

``sagaguard plan`` needs only a process model; ``sagaguard run`` and ``sagaguard worker``
need the code behind every step too. A spec file binds it by import path (``handler``,
``compensate``, ``verify`` as ``module:function``, imported with the spec's folder on
``sys.path``); a coded saga brings it along. A spec that binds no code stays plan-only and
says so in one line. Every failure is one :class:`~sagaguard.exceptions.SagaGuardError`
line that names the target.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sagaguard.engine.saga import Saga
from sagaguard.exceptions import PlanError, SagaDefinitionError, SagaGuardError
from sagaguard.model import Process
from sagaguard.spec import load_spec
from sagaguard.targets import import_module, import_target, is_import_target, is_spec_file_target

__all__ = ["load_app", "load_saga", "load_sagas", "load_worker_sagas"]


def load_saga(target: str | Path) -> Saga:
    """The runnable saga named by ``target``: a spec file path, else ``module:attribute``.

    A spec file becomes ``Saga.from_process(spec, base_dir=<the spec's folder>)``. An import
    target must name a :class:`Saga` (or a :class:`Process` whose steps bind code).
    """
    text = str(target)
    # As for `plan`: an existing path always wins, so a file literally named `a:b` stays a file.
    if is_spec_file_target(target):
        return _from_spec(Path(text))
    return _from_import(text)


def load_sagas(targets: list[str]) -> list[Saga]:
    """Several sagas for one worker; two targets defining the same process is an error."""
    sagas: list[Saga] = []
    seen: dict[str, str] = {}
    for target in targets:
        saga = load_saga(target)
        name = saga.process.name
        if name in seen:
            raise SagaDefinitionError(
                f"{target}: defines process {name!r}, already defined by {seen[name]}"
            )
        seen[name] = target
        sagas.append(saga)
    return sagas


def load_app(module: str) -> list[Saga]:
    """Every :class:`Saga` that ``module`` defines at module level (``module:attr``: that one).

    How a worker is told about an application's sagas without naming each: ``--app shop``.
    A module that defines none is an error, so a typo cannot start a worker that drives
    nothing.
    """
    if is_import_target(module):
        return [load_saga(module)]
    found = import_module(module)
    sagas: list[Saga] = []
    for name, value in vars(found).items():
        if isinstance(value, Saga) and all(value is not s for s in sagas):
            try:
                value.check_runnable()
            except SagaGuardError as exc:
                raise SagaDefinitionError(f"{module}:{name}: {exc}") from None
            sagas.append(value)
    if not sagas:
        raise SagaDefinitionError(f"{module}: defines no Saga at module level")
    return sagas


def load_worker_sagas(targets: list[str], apps: list[str]) -> list[Saga]:
    """The sagas of a worker: ``targets`` (as :func:`load_sagas`) and each app's sagas.

    One process may come in several versions (a rollout keeps the old one until its runs
    are done), but not the same version twice.
    """
    sagas = load_sagas(targets)
    for app in apps:
        sagas.extend(load_app(app))
    seen: set[tuple[str, str]] = set()
    unique: list[Saga] = []
    for saga in sagas:
        key = (saga.process.name, saga.process.version)
        if any(saga is s for s in unique):
            continue
        if key in seen:
            raise SagaDefinitionError(f"process {key[0]!r} v{key[1]} is defined twice")
        seen.add(key)
        unique.append(saga)
    if not unique:
        raise SagaGuardError("no saga to drive: name a TARGET or an --app module")
    return unique


def _from_spec(path: Path) -> Saga:
    process = load_spec(path)
    return _bind(str(path), process, base_dir=path.resolve().parent)


def _from_import(target: str) -> Saga:
    # import_target gives the one-line errors of `plan` for a missing module or attribute.
    process = import_target(target)
    module_name, _, attr_path = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for name in attr_path.split("."):
        found = getattr(found, name)
    if isinstance(found, Saga):
        try:
            found.check_runnable()
        except SagaGuardError as exc:
            raise SagaDefinitionError(f"{target}: {exc}") from None
        return found
    return _bind(target, process, base_dir=None)


def _bind(source: str, process: Process, *, base_dir: Path | None) -> Saga:
    try:
        return Saga.from_process(process, base_dir=base_dir)
    except SagaGuardError as exc:
        raise SagaDefinitionError(f"{source}: {exc}") from None
    except SyntaxError as exc:
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "a handler module"
        raise PlanError(f"{source}: syntax error in {where}: {exc.msg}") from None
    except Exception as exc:
        # Importing the handler modules runs the user's code; its failure is theirs, not ours.
        raise PlanError(
            f"{source}: importing its handlers failed: {type(exc).__name__}: {exc}"
        ) from exc
