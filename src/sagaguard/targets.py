"""Turning what a person types (a spec file or ``module:attribute``) into a process model.

``sagaguard plan saga.yaml`` and ``sagaguard plan shop.checkout:saga`` must behave the
same: both end in one :class:`~sagaguard.model.Process`. A coded saga is found the way
uvicorn finds an app: the module is imported with the current directory on ``sys.path``,
then the attribute path is followed. The attribute may be a ``Process`` or any object
whose ``.process`` is one (a ``Saga``). Every failure is one line that names the target.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sagaguard.exceptions import PlanError, SagaGuardError

if TYPE_CHECKING:
    from sagaguard.model import Process

__all__ = [
    "BoundProcess",
    "import_attribute",
    "import_module",
    "import_target",
    "is_import_target",
    "is_spec_file_target",
    "load_bound",
    "load_process",
    "verify_bound_of",
]

_IMPORT_TARGET = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$"
)


def is_import_target(target: str) -> bool:
    """True when ``target`` reads as ``module.path:attribute`` rather than a file name."""
    return _IMPORT_TARGET.match(target) is not None


def is_spec_file_target(target: str | Path) -> bool:
    """True when ``target`` names a spec file: an existing path, or not ``module:attribute``.

    An existing path always wins, so a file literally named ``a:b`` stays a file. A name
    the system cannot even look up (too long, a NUL byte) is not an existing path.
    """
    if isinstance(target, Path):
        return True
    text = str(target)
    try:
        exists = Path(text).exists()
    except (OSError, ValueError):
        exists = False
    return exists or not is_import_target(text)


def load_process(target: str | Path) -> Process:
    """The process named by ``target``: an existing spec file, else ``module:attribute``.

    Raises :class:`~sagaguard.exceptions.SpecError` for a bad or missing spec file and
    :class:`~sagaguard.exceptions.PlanError` for a coded saga that cannot be loaded.
    """
    text = str(target)
    if is_spec_file_target(target):
        from sagaguard.spec import load_spec

        return load_spec(text)
    return import_target(text)


class BoundProcess(NamedTuple):
    """A process and which of its steps have verify code bound (None: as the spec says)."""

    process: Process
    verify_bound: frozenset[str] | None


def load_bound(target: str | Path) -> BoundProcess:
    """:func:`load_process`, with the steps that have verify code bound (see below)."""
    process = load_process(target)
    return BoundProcess(process, verify_bound_of(target, process))


def verify_bound_of(target: str | Path, process: Process) -> frozenset[str] | None:
    """Which steps of ``target``'s ``process`` have verify code bound; None: as the spec says.

    The plan of a process describes what the engine does with it as it is bound: a coded
    saga's ``verify`` text is a docstring, so only its ``@step.verify`` functions say which
    lost answers the engine can settle by asking. A spec file says so itself
    (``verify: module:function``), so for a file the answer is None.
    """
    if is_spec_file_target(target):
        return None
    text = str(target)
    from sagaguard.model import Process

    found = import_attribute(text)  # imported already by load_process: a cache hit
    handlers = getattr(found, "handlers", None)
    if isinstance(found, Process) or not callable(handlers):
        return None
    try:
        return frozenset(
            step.id
            for step in process.steps
            if getattr(handlers(step.id), "verify", None) is not None
        )
    except Exception as exc:
        # The saga's own wiring failed; say so in one line, as for reading its process.
        raise PlanError(
            f"{text}: reading its bound code failed: {type(exc).__name__}: {exc}"
        ) from exc


def import_target(target: str) -> Process:
    """Import ``module.path:attribute`` and return the process it names."""
    return _as_process(target, import_attribute(target))


def import_module(module_name: str) -> Any:
    """Import ``module.path`` as :func:`import_attribute` does; ``PlanError`` in one line."""
    if _IMPORT_TARGET.match(f"{module_name}:x") is None:
        raise PlanError(f"{module_name}: expected a module path (e.g. shop.sagas)")
    _put_cwd_on_path()
    return _import_module(module_name, module_name)


def import_attribute(target: str) -> Any:
    """Import ``module.path:attribute`` (the current directory first on the path), follow
    the attribute path and return what it names; ``PlanError`` in one line when it fails."""
    match = _IMPORT_TARGET.match(target)
    if match is None:
        raise PlanError(f"{target}: expected module.path:attribute (e.g. shop.checkout:saga)")
    module_name, attr_path = match.group("module"), match.group("attr")
    _put_cwd_on_path()
    module = _import_module(target, module_name)
    found: Any = module
    walked: list[str] = []
    for name in attr_path.split("."):
        walked.append(name)
        try:
            found = getattr(found, name)
        except AttributeError:
            where = f"module {module_name!r}" if len(walked) == 1 else ".".join(walked[:-1])
            raise PlanError(f"{target}: {where} has no attribute {name!r}") from None
    return found


def _put_cwd_on_path() -> None:
    # `python -m` and uvicorn put the working directory first; a CLI entry point does not.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, cwd)


def _import_module(target: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(f"{missing}."):
            raise PlanError(
                f"{target}: no module named {module_name!r} "
                f"(looked in {os.getcwd()} and the Python path)"
            ) from None
        raise PlanError(f"{target}: importing {module_name!r} failed: {exc}") from exc
    except SagaGuardError as exc:
        raise PlanError(f"{target}: {exc}") from exc
    except SyntaxError as exc:
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "the module"
        raise PlanError(f"{target}: syntax error in {where}: {exc.msg}") from exc
    except Exception as exc:
        # Whatever the module raises while importing is the user's code failing, not ours.
        raise PlanError(
            f"{target}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _as_process(target: str, found: Any) -> Process:
    from sagaguard.model import Process

    if isinstance(found, Process):
        return found
    try:
        process = getattr(found, "process", None)
    except SagaGuardError as exc:
        raise PlanError(f"{target}: {exc}") from exc
    except Exception as exc:
        # A saga builds its model on demand; a wiring mistake surfaces here.
        raise PlanError(
            f"{target}: reading its process failed: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(process, Process):
        return process
    raise PlanError(
        f"{target}: is of type {type(found).__name__!r}, "
        "not a sagaguard Process or a saga with a `.process`"
    )
