"""``sagaguard verify TARGET``: prove a saga survives every partial failure its plan lists.

TARGET is ``module:saga`` (the team's step code against their fakes or the shipped one) or
a spec file (simulated providers, as the spec declares them). Every scenario of the fault
matrix runs on the real engine in a fresh journal; exit 0 when all pass, 1 on any
violation, 2 for bad input. A failure names its scenario and seed and prints the command
that replays it alone. The library does the work (:mod:`sagaguard.testing.harness`); this
module parses flags and prints.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sagaguard.cli.app import app
from sagaguard.cli.bounds import Bound
from sagaguard.cli.errors import PROG
from sagaguard.cli.escapes import printable
from sagaguard.cli.output import format_for, write_document

if TYPE_CHECKING:
    from sagaguard.testing.harness import Progress as ProgressCallback
    from sagaguard.testing.harness import Report
    from sagaguard.testing.scenario import ScenarioResult

__all__ = ["ProofFormat", "verify"]

EXIT_VIOLATION = 1
SHOWN_FAILURES = 10
"""Failing scenarios the terminal table shows in full; the other formats show them all."""
SEED = Bound(0, 2**63 - 1, "")
EXPLORE = Bound(0, 100_000, "schedules")


class ProofFormat(StrEnum):
    """The renderings of a proof."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


_SUFFIX_FORMATS = {
    ".json": ProofFormat.JSON,
    ".md": ProofFormat.MARKDOWN,
    ".markdown": ProofFormat.MARKDOWN,
    ".html": ProofFormat.HTML,
    ".htm": ProofFormat.HTML,
    ".txt": ProofFormat.TABLE,
}


@app.command()
def verify(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A coded saga as module.path:attribute (a Saga, a sagaguard.testing.Subject, "
            "or a function returning one), or a spec file (simulated providers).",
            show_default=False,
        ),
    ],
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="ID",
            help="Run only this scenario (repeat, or separate ids with commas).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Seed of the backoff jitter and of --explore's schedules.",
            callback=SEED.check(),
        ),
    ] = 0,
    explore: Annotated[
        int,
        typer.Option(
            "--explore",
            metavar="N",
            help="Also run N random fault schedules (several faults each); a failing one "
            "is shrunk to a minimal schedule.",
            callback=EXPLORE.check(),
        ),
    ] = 0,
    code: Annotated[
        bool,
        typer.Option(
            "--code",
            help="For a spec file: run its bound handlers instead of simulated providers.",
        ),
    ] = False,
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="FILE",
            help="The input (JSON) of every run, `-` for stdin. Default: the subject's own.",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        str,
        typer.Option(
            "--db",
            metavar="URL",
            help="Where each scenario's fresh journal lives: memory:// (default), sqlite "
            "or sqlite:///FOLDER (a file per scenario), postgresql://... (a schema per "
            "scenario, dropped after).",
        ),
    ] = "memory://",
    output_format: Annotated[
        ProofFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="table, json, markdown or html (the proof joined with the plan). Default: "
            "from the -o suffix, else table.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the proof to FILE (atomically) instead of stdout.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the fault matrix against the real engine; exit 1 on any violation."""
    from sagaguard.testing.harness import verify as run_matrix
    from sagaguard.testing.subject import load_subject

    fmt = output_format or format_for(
        output, _SUFFIX_FORMATS, default=ProofFormat.TABLE, noun="proof"
    )
    ids = [part.strip() for item in only or () for part in item.split(",") if part.strip()]
    source = load_subject(target, code=code)
    if input_file is not None:
        from sagaguard.cli.running import read_json_input
        from sagaguard.testing.subject import with_input

        source = with_input(source, read_json_input(input_file))
    with _quiet_engine(), _progress() as progress:
        report = run_matrix(source, db=db, seed=seed, only=ids, explore=explore, progress=progress)
    written = write_document(output, _render(report, fmt))
    if written is not None:
        sys.stderr.write(f"{PROG}: wrote {written} ({fmt.value})\n")
        if not report.passed:
            sys.stderr.write(_failure_lines(report))
    if not report.passed:
        raise typer.Exit(EXIT_VIOLATION)


def _render(report: Report, fmt: ProofFormat) -> str:
    if fmt is ProofFormat.JSON:
        import json

        from sagaguard.testing.report import to_json

        return json.dumps(to_json(report), indent=2, ensure_ascii=False)
    if fmt is ProofFormat.MARKDOWN:
        from sagaguard.testing.report import render_markdown

        return render_markdown(report)
    if fmt is ProofFormat.HTML:
        from sagaguard.testing.report_html import render_html

        return render_html(report)
    return _table(report)


def _table(report: Report) -> str:
    """The terminal table: the verdict, the matrix by kind, then every failure in full."""
    from sagaguard.testing.report import kind_rows

    rows = [("scenarios", "count", "passed", "failed")]
    rows += [(what, str(n), str(ok), str(bad)) for what, n, ok, bad in kind_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"{printable(report.target)}: {_verdict(report)} (seed {report.seed}, "
        f"{printable(report.db)}, {report.seconds:.2f}s)",
        "",
    ]
    if report.shared:
        lines[1:1] = [
            "note: every scenario ran the same saga object, with whatever fakes it holds, "
            "so what one run left in them the next one sees; name a function that builds "
            "the saga on fresh fakes instead (see sagaguard.testing.Subject)",
        ]
    for row in rows:
        lines.append(
            f"  {row[0]:<{widths[0]}}  "
            + "  ".join(f"{cell:>{widths[i + 1]}}" for i, cell in enumerate(row[1:]))
        )
    if not report.passed:
        lines += ["", *_finding_lines(report)]
    failures = _failure_lines(report, most=SHOWN_FAILURES)
    return "\n".join(lines) + ("\n\n" + failures if failures else "\n")


def _finding_lines(report: Report) -> list[str]:
    from sagaguard.testing.report import findings

    out = ["What failed (by check and step, with the first scenario that shows it):"]
    for finding in findings(report):
        where = f" [{finding.step}]" if finding.step else ""
        out.append(
            f"  {finding.check}{where}: {finding.scenarios} scenario"
            f"{'' if finding.scenarios == 1 else 's'}, e.g. {finding.first}: "
            + printable(finding.example)
        )
    return out


def _verdict(report: Report) -> str:
    total = len(report.results)
    if report.passed:
        return f"{total} scenarios, all passed"
    return f"{len(report.failed)} of {total} scenarios FAILED"


def _failure_lines(report: Report, *, most: int | None = None) -> str:
    from sagaguard.testing.report import describe_faults

    out: list[str] = []
    failed = report.failed
    for result in failed[:most]:
        scenario = result.scenario
        out.append(f"FAILED {printable(scenario.id)}: {printable(scenario.title)}")
        shrunk = report.shrunk_from(result)
        was = f" (shrunk from {shrunk})" if shrunk and shrunk > len(scenario.faults) else ""
        out.append(f"  faults{was}: {printable(describe_faults(scenario.faults))}")
        out += [f"  {printable(str(failure))}" for failure in result.failures]
        out.append(f"  replay: {printable(report.replay(result))}")
        out.append("")
    if most is not None and len(failed) > most:
        out.append(
            f"... and {len(failed) - most} more failing scenarios "
            "(--format markdown or json lists every one)"
        )
    return "\n".join(out)


@contextmanager
def _quiet_engine() -> Iterator[None]:
    """The engine's warnings during a proof are the scenarios' own faults: not for the screen."""
    logger = logging.getLogger("sagaguard")
    handler = logging.NullHandler()
    before = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = before


@contextmanager
def _progress() -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr while a person watches; nothing for pipes and logs."""
    isatty = getattr(sys.stderr, "isatty", None)
    if not (isatty and isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("verify"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        transient=True,
        console=Console(file=sys.stderr, highlight=False),
    ) as bar:
        task = bar.add_task("", total=None)

        def advance(result: ScenarioResult, done: int, total: int) -> None:
            mark = "" if result.passed else " (failed)"
            bar.update(task, completed=done, total=total, description=result.scenario.id + mark)

        yield advance
