"""Package attributes imported on first use (PEP 562), so a command pays only for what it uses.

A package ``__init__`` names what it exports and where each name lives; the module behind a
name is imported the first time the name is read, then the value is cached in the package:

    __getattr__, __dir__ = lazy_exports(__name__, {"Engine": "sagaguard.engine.executor"})

Type checkers see the same names through an ``if TYPE_CHECKING:`` import block.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``, whose names live in ``where``."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook PEP 562 names
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook PEP 562 names
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
