"""The planning commands: ``plan`` (the recovery plan), ``check`` (findings), ``init`` (a starter).

All three read a process the same way (:func:`sagaguard.targets.load_process`: a spec
file or a coded saga as ``module:attribute``) and leave every failure to the shared
error handling: one line on stderr, exit code 2.
"""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sagaguard.cli.app import app
from sagaguard.cli.errors import EXIT_FINDINGS, PROG
from sagaguard.cli.output import (
    format_for,
    stdout_is_terminal,
    write_atomic,
    write_document,
    write_stdout,
)
from sagaguard.starter import STARTER_FILE_NAME, starter_spec
from sagaguard.targets import load_process, verify_bound_of

if TYPE_CHECKING:
    from sagaguard.planner import Finding, Plan

__all__ = ["PlanFormat", "check", "init", "plan"]


class PlanFormat(StrEnum):
    """The renderings of a plan."""

    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


_SUFFIX_FORMATS = {
    ".md": PlanFormat.MARKDOWN,
    ".markdown": PlanFormat.MARKDOWN,
    ".json": PlanFormat.JSON,
    ".html": PlanFormat.HTML,
    ".htm": PlanFormat.HTML,
}

SpecArgument = Annotated[
    str,
    typer.Argument(
        metavar="SPEC",
        help="A process spec file (YAML or JSON), or a coded saga as module.path:attribute.",
        show_default=False,
    ),
]


@app.command()
def plan(
    spec: SpecArgument,
    output_format: Annotated[
        PlanFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="markdown, json or html. Default: from the -o suffix, else markdown.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the plan to FILE (atomically) instead of stdout; `-` is stdout.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the recovery plan: steps, rollback, policy, decisions, tests, checklist, findings."""
    process_plan = _plan_of(spec)
    fmt = output_format or format_for(
        output, _SUFFIX_FORMATS, default=PlanFormat.MARKDOWN, noun="plan"
    )
    written = write_document(output, _render(process_plan, fmt))
    if written is not None:
        sys.stderr.write(f"{PROG}: wrote {written} ({fmt.value})\n")


@app.command()
def check(spec: SpecArgument) -> None:
    """Validate a process and list its design findings; exit 1 when one is an error."""
    process_plan = _plan_of(spec)
    findings = process_plan.findings
    if findings and stdout_is_terminal():
        _print_findings_table(findings)
    elif findings:
        write_stdout(_findings_text(findings))
    write_stdout(_summary(spec, process_plan))
    if process_plan.has_errors:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def init(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="[FILE]",
            help="Where to write the starter spec; `-` is stdout.",
            dir_okay=False,
        ),
    ] = Path(STARTER_FILE_NAME),
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Write a commented starter spec (the guide's order checkout) to start from."""
    if str(file) == "-":
        # As for `plan -o -`: the spec itself is the output, so nothing else is printed.
        write_stdout(starter_spec())
        return
    written = write_atomic(file, starter_spec(str(file)), overwrite=force)
    quoted = shlex.quote(str(written))
    write_stdout(
        f"wrote {written}: edit it, then run `{PROG} check {quoted}` and `{PROG} plan {quoted}`"
    )


def _plan_of(target: str) -> Plan:
    from sagaguard.planner import plan as build_plan

    process = load_process(target)
    return build_plan(process, verify_bound=verify_bound_of(target, process))


def _render(process_plan: Plan, fmt: PlanFormat) -> str:
    from sagaguard.planner.render import render

    return render(process_plan, fmt.value)


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _sorted(findings: tuple[Finding, ...]) -> list[Finding]:
    return sorted(findings, key=lambda f: _SEVERITY_ORDER.get(str(f.severity), 3))


def _findings_text(findings: tuple[Finding, ...]) -> str:
    """Plain aligned columns for pipes and logs: severity, step, code, message."""
    rows = [(str(f.severity), f.step or "-", f.code, f.message) for f in _sorted(findings)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{sev:<{widths[0]}}  {step:<{widths[1]}}  {code:<{widths[2]}}  {message}"
        for sev, step, code, message in rows
    )


def _print_findings_table(findings: tuple[Finding, ...]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("code", no_wrap=True)
    table.add_column("message", overflow="fold")
    for finding in _sorted(findings):
        severity = str(finding.severity)
        # Text, not markup: messages quote field paths such as steps[2].
        table.add_row(
            Text(severity, style=_SEVERITY_STYLE.get(severity, "")),
            Text(finding.step or "-"),
            Text(finding.code),
            Text(finding.message),
        )
    Console(highlight=False).print(table)


def _summary(target: str, process_plan: Plan) -> str:
    counts = Counter(str(f.severity) for f in process_plan.findings)
    steps = len(process_plan.steps)
    parts = [
        _count(counts["error"], "error"),
        _count(counts["warning"], "warning"),
        f"{counts['info']} info",
    ]
    name = process_plan.process.name
    verdict = "FAILED" if process_plan.has_errors else "ok"
    return f"{target}: {verdict}: process {name!r}, {_count(steps, 'step')}: {', '.join(parts)}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
