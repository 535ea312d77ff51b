"""``sagaguard demo``: the guide's checkout incident, played on a local SQLite journal.

Two scenarios (:mod:`sagaguard.demo.scenarios`): a charge whose answer is lost, settled by
verify without a second charge; a delivery that cannot be booked, rolled back in reverse
order. Each journal event is printed the moment it is committed, with one plain-English
line, and each provider effect the moment it happens, so the write-ahead order shows.
Each scenario ends with the provider ledger and the claims it checks; a claim that does
not hold is a bug and fails the command (exit 1).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from sagaguard.cli.app import app
from sagaguard.cli.errors import EXIT_FINDINGS, PROG, report_error
from sagaguard.cli.runs import make_console, sqlite_path, status_text
from sagaguard.cli.views import Narrator
from sagaguard.demo import SCENARIOS, Entry, Played, Scenario, play
from sagaguard.exceptions import SagaGuardError
from sagaguard.storage import Event, JournalStore, open_store

__all__ = ["demo"]


@app.command()
def demo(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="SQLite file (a path or sqlite:///path) to play the demo in, kept afterwards. "
            "Default: a fresh temporary file.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary journal to inspect it afterwards.")
    ] = False,
) -> None:
    """Play the guide's incident: a lost payment answer verified, a failed delivery rolled back.

    Prints every journal event as it is committed, with what it means, then each
    provider's ledger: one charge in the first scenario; one charge, one refund, one
    reservation and one release in the second.
    """
    console = make_console()
    temp_dir = None
    if db is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="sagaguard-demo-"))
        path = temp_dir / "demo.sqlite3"
    else:
        path = _demo_path(db)
    url = f"sqlite:///{path.resolve()}"
    try:
        store = open_store(url)
        try:
            played = _play_all(console, store, path)
        finally:
            store.close()
    finally:
        if temp_dir is not None and not keep:
            shutil.rmtree(temp_dir, ignore_errors=True)
    kept = temp_dir is None or keep
    _epilogue(console, played, url if kept else None)
    failed = [check.claim for p in played for check in p.checks if not check.holds]
    if failed:
        report_error(f"demo claim does not hold: {failed[0]}")
        raise typer.Exit(EXIT_FINDINGS)


def _demo_path(db: str) -> Path:
    """The demo's SQLite file from ``--db``: a path, or a ``sqlite:///`` URL naming one."""
    if "://" in db:
        path = sqlite_path(db) if db.lower().startswith("sqlite:") else None
        if path is None:
            raise SagaGuardError(
                f"--db {db!r}: the demo plays on SQLite; give a file path or sqlite:///PATH"
            )
    else:
        path = Path(db)
    if path.is_dir():
        raise SagaGuardError(f"--db {db!r}: is a directory; give a file path")
    return path


def _play_all(console: Console, store: JournalStore, db: Path) -> list[Played]:
    details = store.info().details
    durability = ", ".join(
        f"{key}={details[key]}" for key in ("journal_mode", "synchronous") if key in details
    )
    console.print(Text(f"{PROG} demo: the checkout incident from the recovery guide", "bold"))
    console.print(Text(f"journal: {db} (SQLite {durability})"))
    console.print(
        Text(
            "saga: create_order > reserve_stock > charge_payment > book_delivery > "
            "send_confirmation_email (the payment provider does not deduplicate charges)",
            style="dim",
        )
    )
    played = []
    for scenario in SCENARIOS:
        console.print()
        played.append(_play_one(console, store, scenario))
    return played


def _play_one(console: Console, store: JournalStore, scenario: Scenario) -> Played:
    console.rule(Text(f"Scenario {scenario.number}: {scenario.title}", style="bold"))
    console.print(Text(scenario.story))
    console.print()
    narrator = Narrator()

    def on_event(event: Event) -> None:
        _print_event(console, event, narrator.tell(event))

    def on_effect(entry: Entry) -> None:
        line = Text("provider: ", style="bold")
        line.append(_effect_text(entry), style="bold")
        console.print(Padding(line, (0, 0, 0, 7), expand=False))

    result = play(scenario, store=store, on_event=on_event, on_effect=on_effect)
    console.print()
    outcome = Text(f"run {result.operation_id}: ")
    outcome.append_text(status_text(result.snapshot.run.status.value))
    console.print(outcome)
    _print_ledger(console, result.ledger)
    for check in result.checks:
        mark = Text("  [ok] " if check.holds else "  [FAILED] ", "green" if check.holds else "red")
        mark.append(check.claim)
        console.print(mark)
    return result


def _print_event(console: Console, event: Event, narration: str) -> None:
    head = Text(f"{event.seq:>4} ", style="dim")
    head.append(event.kind, style="cyan")
    if event.step_id:
        head.append(f"  {event.step_id}")
    if event.to_status:
        change = f"{event.from_status} -> {event.to_status}" if event.from_status else ""
        head.append(f"  {change or '-> ' + event.to_status}", style="dim")
    console.print(head)
    console.print(Padding(Text(narration), (0, 0, 0, 5), expand=False))


def _effect_text(entry: Entry) -> str:
    parts = [entry.system, entry.action, entry.ref]
    if entry.detail:
        parts.append(entry.detail)
    if entry.key:
        parts.append(f"(key {entry.key})")
    return " ".join(parts)


def _print_ledger(console: Console, ledger: list[Entry]) -> None:
    table = Table(
        title="provider ledger: every effect the outside world holds",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("system", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("ref", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("idempotency key", overflow="fold")
    for entry in ledger:
        style = "bold" if entry.system == "psp" else ""
        table.add_row(
            Text(entry.system, style),
            Text(entry.action, style),
            Text(entry.ref),
            Text(entry.detail or "-"),
            Text(entry.key or "-"),
        )
    console.print(table)


def _epilogue(console: Console, played: list[Played], url: str | None) -> None:
    console.print()
    if url is None:
        console.print(Text("the temporary journal was removed (use --keep to inspect it)", "dim"))
        return
    console.print(Text(f"journal kept: {url}"))
    for result in played:
        console.print(Text(f"  {PROG} runs show {result.operation_id} --db {url}"))
