"""How the command line fails: one line on stderr, a stable exit code, never a traceback.

Exit codes are a contract scripts rely on:

    0    the command did its job
    1    the command ran and found a problem (``check`` met an error finding)
    2    bad input: a usage error, or any :class:`~sagaguard.exceptions.SagaGuardError`;
         also output that cannot be written (``-o`` to a device, stdout on a full disk)
    130  interrupted (Ctrl-C); nothing more is printed, the terminal already shows it
         (``run`` first hands its run back and says so; 143 when SIGTERM stopped it)

:class:`SagaGuardGroup` is the click group behind the shared typer app. It runs every
command with click's own error handling switched off and reports each failure itself, so
the same rules hold for ``sagaguard`` on a terminal and for ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import typer
from typer.core import TyperGroup

from sagaguard.cli.escapes import printable
from sagaguard.cli.output import (
    OutputError,
    flush_stdout,
    raised_writing,
    silence_stdout,
    write_stdout,
)
from sagaguard.exceptions import SagaGuardError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "MAX_ERROR_CHARS",
    "PROG",
    "SagaGuardGroup",
    "one_line",
    "report_error",
]

PROG = "sagaguard"
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "SAGAGUARD_DEBUG"


def _click_exceptions() -> ModuleType:
    # Recent typer ships its own copy of click; older releases use click itself.
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


_CLICK = _click_exceptions()
_ClickException: type[Exception] = _CLICK.ClickException
_UsageError: type[Exception] = _CLICK.UsageError


MAX_ERROR_CHARS = 1000
"""An error line longer than this is cut in the middle: it must fit a person's screen."""


def one_line(text: str) -> str:
    """Fold a message onto one short, printable line: every failure is one line on stderr.

    Control characters and terminal escapes in it (an operation id, a reviewer's note)
    are escaped, and a line longer than :data:`MAX_ERROR_CHARS` keeps its two ends.
    """
    parts = [part.strip() for part in str(text).splitlines()]
    line = printable("; ".join(part for part in parts if part) or "unknown error")
    if len(line) > MAX_ERROR_CHARS:
        half = MAX_ERROR_CHARS // 2
        line = f"{line[:half]} ... ({len(line) - 2 * half} characters cut) ... {line[-half:]}"
    return line


def report_error(message: str, *, label: str = "error") -> None:
    """Write ``sagaguard: error: <message>`` as a single line on stderr."""
    sys.stderr.write(f"{PROG}: {label}: {one_line(message)}\n")
    sys.stderr.flush()


def debug_enabled() -> bool:
    """True when ``SAGAGUARD_DEBUG`` asks for tracebacks of internal errors."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _message(exc: Exception) -> str:
    message = str(getattr(exc, "format_message", lambda: str(exc))())
    # typer passes pydantic's wording through for a bad choice.
    return message.replace("Value error, ", "")


def _report_usage_error(exc: Exception) -> None:
    message = _message(exc)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # `sagaguard`, `sagaguard runs`: the help is the answer, on stdout like `--help`;
        # the exit code (2) says no command ran.
        if message.strip():
            write_stdout(message.rstrip("\n"))
        return
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message = f"{message.rstrip('.')} (see '{ctx.command_path} --help')"
    report_error(message)


class SagaGuardGroup(TyperGroup):
    """The top-level command group: turns every failure into one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; in standalone mode exit with the code of the outcome."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        sys.exit(self._run(args, prog_name, complete_var, windows_expand_args, **extra))

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        windows_expand_args: bool,
        **extra: Any,
    ) -> int:
        try:
            outcome = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
            # What is still buffered must reach stdout now, while a failure can be reported.
            flush_stdout()
        except SagaGuardError as exc:
            if isinstance(exc, OutputError):
                silence_stdout()
            report_error(str(exc))
            return EXIT_BAD_INPUT
        except BrokenPipeError:
            raise
        except OSError as exc:
            # Help, a table or the version written to a full device: the output failed.
            if not raised_writing(exc):
                raise
            silence_stdout()
            report_error(f"stdout: cannot write ({exc.strerror or exc})")
            return EXIT_BAD_INPUT
        except _UsageError as exc:
            _report_usage_error(exc)
            return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
        except _ClickException as exc:
            report_error(_message(exc))
            return int(getattr(exc, "exit_code", EXIT_INTERNAL))
        except typer.Abort as exc:
            if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
                return EXIT_INTERRUPTED
            report_error("aborted")
            return EXIT_INTERNAL
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        # Without standalone mode typer hands back the code of a `typer.Exit` (the commands
        # return None); anything else means the command finished normally.
        if isinstance(outcome, int) and not isinstance(outcome, bool):
            return outcome
        return EXIT_OK
