"""What ``sagaguard demo`` prints: each journal event the moment it is committed, told in plain
English, and each provider effect the moment it happens, so the write-ahead order shows.

Imported by the command when it runs (rich and the demo sagas are not needed for any other
command).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from sagaguard.cli.errors import PROG
from sagaguard.cli.escapes import printable
from sagaguard.cli.runs import status_text
from sagaguard.cli.views import Narrator
from sagaguard.demo import SCENARIOS, Entry, Played, Scenario, play
from sagaguard.storage import Event, JournalStore

__all__ = ["play_all", "show_epilogue"]


def play_all(console: Console, store: JournalStore, db: Path) -> list[Played]:
    """Play every scenario on ``store``, printing as it goes; the results, in order."""
    details = store.info().details
    durability = ", ".join(
        f"{key}={details[key]}" for key in ("journal_mode", "synchronous") if key in details
    )
    console.print(Text(f"{PROG} demo: the checkout incident from the recovery guide", "bold"))
    console.print(Text(printable(f"journal: {db} (SQLite {durability})")))
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


def show_epilogue(console: Console, played: list[Played], url: str | None) -> None:
    """Where the journal is (kept) or that it was removed, and how to look at each run."""
    console.print()
    if url is None:
        console.print(Text("the temporary journal was removed (use --keep to inspect it)", "dim"))
        return
    console.print(Text(printable(f"journal kept: {url}")))
    for result in played:
        console.print(Text(printable(f"  {PROG} runs show {result.operation_id} --db {url}")))
