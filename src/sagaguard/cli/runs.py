"""``sagaguard runs list`` and ``sagaguard runs show``: the journal, for a person and for a script.

Also what every journal command shares: the ``--db`` option (``$SAGAGUARD_DB``), opening the
journal (a read-only command never creates an empty file by mistake), ``--json`` output, and
the rich tables of a run (header, step timeline, events) that ``run``, ``review`` and
``demo`` print too. The views are :mod:`sagaguard.operator`'s: tables render their
``to_json()`` dicts, escaped; ``--json`` prints the same dicts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, unquote, urlsplit

import typer

from sagaguard.cli.app import app
from sagaguard.cli.bounds import LIMIT
from sagaguard.cli.escapes import json_text, printable, printable_view
from sagaguard.cli.output import write_stdout
from sagaguard.exceptions import RunNotFoundError, SagaGuardError, StoreError
from sagaguard.operator.oddities import OddityKind
from sagaguard.operator.runs import list_runs as run_rows
from sagaguard.operator.runs import run_detail
from sagaguard.storage import DEFAULT_URL, open_store
from sagaguard.vocabulary import RunStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from sagaguard.storage import JournalStore, RunSnapshot

__all__ = [
    "DB_ENV",
    "DbOption",
    "JsonOption",
    "LimitOption",
    "journal",
    "journal_url",
    "load_run",
    "make_console",
    "not_found",
    "oddity_text",
    "print_json",
    "render_events",
    "render_run",
    "render_run_list",
    "status_text",
]

DB_ENV = "SAGAGUARD_DB"


def journal_url(value: str) -> str:
    """A ``--db`` value as a journal URL: a URL as given, a plain file path as ``sqlite:///``."""
    if "://" in value:
        return value
    if not value.strip():
        raise typer.BadParameter("expected a file path or a journal URL, not an empty value")
    return "sqlite:///" + quote(value, safe="/")


DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        envvar=DB_ENV,
        callback=journal_url,
        help="The journal: a file path, or sqlite:///path.sqlite3. "
        f"Default: ${DB_ENV}, else {DEFAULT_URL}.",
        show_default=False,
        show_envvar=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
LimitOption = Annotated[
    int,
    typer.Option("--limit", callback=LIMIT.check(), help=f"At most this many runs ({LIMIT.text})."),
]

runs_app = typer.Typer(
    name="runs",
    help="List runs, show one run's step timeline and journal events, prune finished runs.",
    no_args_is_help=True,
)
app.add_typer(runs_app, name="runs")

_STYLES = {
    "completed": "green",
    "compensated": "yellow",
    "failed": "red",
    "needs_manual_review": "bold magenta",
    "compensation_failed": "bold red",
    "unknown": "bold yellow",
    "running": "cyan",
    "started": "cyan",
    "compensating": "cyan",
}


@runs_app.command("list")
def list_runs(
    status: Annotated[
        RunStatus | None,
        typer.Option("--status", help="Only runs with this status.", show_default=False),
    ] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """List runs, newest first: operation id, process, status, last change, reason."""
    from rich.text import Text

    with journal(db, must_exist=True, read_only=True) as store:
        rows = [row.to_json() for row in run_rows(store, status=status, limit=limit)]
    if as_json:
        print_json(rows)
        return
    console = make_console()
    if not rows:
        which = f" with status {status.value}" if status else ""
        console.print(Text(printable(f"no runs{which} in {db}")))
        return
    render_run_list(console, rows)


@runs_app.command("show")
def show_run(
    operation_id: Annotated[
        str, typer.Argument(metavar="OP", help="The run's operation id.", show_default=False)
    ],
    as_json: JsonOption = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """Show one run: its steps (status, attempts, external ids, reasons) and every event."""
    with journal(db, must_exist=True, read_only=True) as store:
        try:
            view = run_detail(store, operation_id).to_json()
        except RunNotFoundError:
            raise not_found(operation_id, db) from None
    if as_json:
        print_json(view)
        return
    console = make_console()
    render_run(console, view)
    console.print()
    render_events(console, view["events"])


_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_AGE_UNITS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}


def parse_age(text: str) -> float:
    """Seconds from ``30d``, ``12h``, ``90m`` or ``45s`` (``SagaGuardError`` naming the flag)."""
    match = _AGE_RE.match(text)
    if match is None:
        raise SagaGuardError(f"--older-than {text[:40]!r} is not an age (use e.g. 30d, 12h, 90m)")
    seconds = float(match.group(1)) * _AGE_UNITS[match.group(2)]
    if not 0 < seconds <= 100 * 365 * 86_400.0:
        raise SagaGuardError(
            f"--older-than {text[:40]!r} must be more than 0 and at most 100 years"
        )
    return seconds


@runs_app.command("prune")
def prune_runs(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Remove finished runs last changed longer ago than this (30d, 12h, 90m).",
            show_default=False,
        ),
    ],
    status: Annotated[
        list[RunStatus] | None,
        typer.Option(
            "--status",
            help="Only runs with this status (repeatable; default: completed, compensated, "
            "failed). Runs that are active or need review are never removed.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = DEFAULT_URL,
) -> None:
    """Remove finished runs older than AGE, with their steps, events and alerts."""
    age = parse_age(older_than)
    with journal(db, must_exist=True) as store:
        removed = store.prune(older_than=time.time() - age, statuses=status or ())
    which = ", ".join(s.value for s in status) if status else "finished"
    noun = "run" if removed == 1 else "runs"
    write_stdout(f"pruned {removed} {which} {noun} older than {older_than.strip()} from {db}")


# -- shared by the journal commands ---------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (``None`` for other schemes or a malformed URL)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
        return None
    return Path(unquote(parts.path[1:]))


@contextmanager
def journal(url: str, *, must_exist: bool, read_only: bool = False) -> Iterator[JournalStore]:
    """Open the journal at ``url`` for one command and close it afterwards.

    With ``must_exist`` a missing SQLite file is an error (one line naming it) instead of
    a new empty journal: a mistyped ``--db`` must not look like "no runs". With
    ``read_only`` nothing is written to it (see ``open_store``).
    """
    path = sqlite_path(url)
    try:
        missing = must_exist and path is not None and not path.exists()
    except OSError as exc:  # a name the system cannot even look up (too long)
        raise StoreError(f"{path}: cannot be a journal ({exc.strerror or exc})") from None
    if missing:
        raise StoreError(
            f"no journal at {path}: nothing has run with this journal yet "
            f"(pass --db URL or set {DB_ENV})"
        )
    store = open_store(url, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def load_run(store: JournalStore, operation_id: str, url: str) -> RunSnapshot:
    """The run's snapshot, or one line naming the operation id and the journal."""
    try:
        return store.load(operation_id)
    except RunNotFoundError:
        raise not_found(operation_id, url) from None


def not_found(operation_id: str, url: str) -> RunNotFoundError:
    """The error for an operation id of no run: one line naming it and the journal."""
    return RunNotFoundError(f"no run has operation_id {operation_id!r} in {url}")


def print_json(value: Any) -> None:
    """Print a view as indented JSON (UTF-8, whatever the locale, no raw control character)."""
    write_stdout(json_text(value))


def make_console() -> Console:
    """A console for tables: colours only on a terminal, 80 columns when piped."""
    from rich.console import Console

    return Console(highlight=False, markup=False, emoji=False)


def status_text(status: str | None) -> Text:
    """A status, coloured by how it ended."""
    from rich.text import Text

    return Text(status or "-", style=_STYLES.get(status or "", ""))


def render_run(console: Console, view: dict[str, Any]) -> None:
    """The run's header and its step timeline."""
    from rich.table import Table
    from rich.text import Text

    view = printable_view(view)
    header = Text()
    header.append(f"run {view['operation_id']}", style="bold")
    header.append(f"  {view['process']} v{view['version']}  ")
    header.append_text(status_text(view["status"]))
    console.print(header)
    if view.get("reason"):
        console.print(Text(f"reason: {view['reason']}"))
    for odd in view.get("oddities", ()):
        console.print(Text(oddity_text(odd), style="bold yellow"))
    if view.get("owner"):
        console.print(Text(f"owner: {view['owner']} (lease until {view['lease_expires_at']})"))
    console.print(Text(f"created {view['created_at']}  updated {view['updated_at']}", style="dim"))
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("step / status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("external id", overflow="fold")
    table.add_column("reason", overflow="fold")
    for step in view["steps"]:
        tries = str(step["attempts"])
        if step["compensation_attempts"]:
            tries += f"+{step['compensation_attempts']}u"
        cell = Text(step["step_id"])
        cell.append("\n")
        cell.append_text(status_text(step["status"]))
        table.add_row(cell, tries, Text(step["external_id"] or "-"), Text(step["reason"] or ""))
    console.print(table)
    if any(step["compensation_attempts"] for step in view["steps"]):
        console.print(Text("tries: forward attempts, +Nu = undo (compensation) attempts", "dim"))


def render_events(console: Console, events: Sequence[dict[str, Any]]) -> None:
    """A run's journal events: seq, time, kind and step, from -> to, reason, and who acted.

    The actor is shown when it changes (an engine, a worker taking over, a reviewer), so the
    table fits 80 columns while every row still says who.
    """
    from rich.table import Table
    from rich.text import Text

    events = [printable_view(event) for event in events]
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("event / step / by", no_wrap=True)
    table.add_column("from -> to / reason", overflow="fold")
    actor = None
    for event in events:
        what = Text(event["kind"])
        if event["step_id"]:
            what.append(f"\n{event['step_id']}")
        if event["actor"] != actor:
            actor = event["actor"]
            what.append(f"\nby {actor}", style="dim")
        detail = Text()
        if event["to"]:
            detail.append(f"{event['from'] or '-'} -> {event['to']}")
        if event["reason"]:
            detail.append(("\n" if detail else "") + event["reason"], style="dim")
        table.add_row(str(event["seq"]), (event["at"] or "")[11:23], what, detail)
    console.print(table)


def render_run_list(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    """Runs as a table: operation id and process, status, last change, reason."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("run / process", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("updated (UTC)", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for row in map(printable_view, rows):
        run = Text(row["operation_id"])
        run.append(f"\n{row['process']} v{row['version']}", style="dim")
        why = Text(row["reason"] or "")
        for odd in row.get("oddities", ()):
            why.append(("\n" if why else "") + oddity_text(odd), style="yellow")
        table.add_row(
            run,
            status_text(row["status"]),
            (row["updated_at"] or "")[:16].replace("T", " "),
            why,
        )
    console.print(table)


def oddity_text(odd: dict[str, Any]) -> str:
    """One line for what is odd about a run (a view's ``oddities`` entry, escaped already)."""
    kind, step, reason = odd["kind"], odd["step_id"], odd["reason"]
    what = "failed" if kind == OddityKind.BEST_EFFORT_FAILED else "outcome unknown"
    return f"best-effort {step} {what}" + (f": {reason}" if reason else "")
