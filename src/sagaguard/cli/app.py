"""The one typer app every command module registers on.

A command module imports :data:`app` and adds itself in one line, either a command
(``@app.command()``) or a group of commands (``app.add_typer(runs_app, name="runs")``);
``sagaguard.cli`` imports the modules. Commands report bad input by raising
:class:`~sagaguard.exceptions.SagaGuardError` (the group turns it into exit code 2 and
one line on stderr), choose another exit code with ``typer.Exit(code)``, and return None.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sagaguard import __version__
from sagaguard.cli.errors import PROG, SagaGuardGroup
from sagaguard.cli.output import write_stdout

__all__ = ["app"]

app = typer.Typer(
    name=PROG,
    cls=SagaGuardGroup,
    help="Make multi-step processes safe to fail: plan recovery, run sagas durably, prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's help panels cost ~100 ms of imports on every `--help`.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        write_stdout(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Make multi-step processes safe to fail: plan recovery, run sagas durably, prove it."""
