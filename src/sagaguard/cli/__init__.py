"""The ``sagaguard`` command line.

:data:`app` (``sagaguard.cli.app``) is one typer app; each module of this package adds
its commands to it in one line (``@app.command()`` or ``app.add_typer(...)``) and is
listed in :data:`COMMAND_MODULES`. :func:`main` is the console script: it runs the app
and makes sure that nothing, not even a failure outside a command, ends in a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import NoReturn

from sagaguard.cli.app import app
from sagaguard.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    PROG,
    debug_enabled,
    report_error,
)
from sagaguard.cli.output import silence_stdout
from sagaguard.exceptions import SagaGuardError

__all__ = ["COMMAND_MODULES", "app", "main"]

# In help order. A module not written yet is skipped; one that exists but fails to import
# is a bug and is reported as one.
COMMAND_MODULES = ("planning", "verify", "running", "worker", "runs", "review", "demo")

for _name in COMMAND_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``sagaguard`` with ``argv`` (default: the process arguments) and exit."""
    import typer.main

    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name=PROG)
    except SagaGuardError as exc:
        report_error(str(exc))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_INTERNAL)
    except Exception as exc:
        if debug_enabled():
            raise
        report_error(
            f"{type(exc).__name__}: {exc} (a bug in {PROG}; "
            "set SAGAGUARD_DEBUG=1 to see the traceback)",
            label="internal error",
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
