"""``sagaguard review list`` and ``review resolve``: where automation hands over to a person.

A run waits in ``needs_manual_review`` when a step's outcome cannot be known (no verify, or
verify failed) or when undoing a step failed. ``review list`` shows each waiting run, the
step, why, who was alerted and which resolutions fit. ``review resolve`` records what the
person found (audited as a ``resolved`` event with their name and note) and, given the
saga's TARGET, continues the run at once, forward or backward; without it the run is left
for ``sagaguard worker``.

The queue, its rows and who acts after a resolution are :mod:`sagaguard.operator.review`'s
(``review_queue``, ``ReviewItem.to_row_json``, ``next_move``): this module only renders them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sagaguard.cli.app import app
from sagaguard.cli.errors import PROG
from sagaguard.cli.escapes import printable, printable_view
from sagaguard.cli.running import parse_json
from sagaguard.cli.runs import (
    DbOption,
    JsonOption,
    LimitOption,
    journal,
    load_run,
    make_console,
    print_json,
    render_run,
    status_text,
)
from sagaguard.cli.views import run_view
from sagaguard.engine.resolution import Resolution
from sagaguard.exceptions import SagaGuardError
from sagaguard.operator.review import NextMove, next_move, review_queue
from sagaguard.storage import DEFAULT_URL

if TYPE_CHECKING:
    from sagaguard.engine import Engine
    from sagaguard.storage import RunSnapshot

__all__ = ["list_reviews", "resolve"]

review_app = typer.Typer(
    name="review",
    help="Runs waiting for a person: list them, record what was found, continue them.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")


@review_app.command("list")
def list_reviews(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET",
            help="The sagas, to show each waiting step's alert route from their alerts map.",
            show_default=False,
        ),
    ] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """List runs waiting for manual review: the waiting step, why, its alert route."""
    from rich.table import Table
    from rich.text import Text

    from sagaguard.engine.loading import load_sagas

    sagas = load_sagas(targets or [])
    with journal(db, must_exist=True, read_only=True) as store:
        queue = review_queue(store, limit=limit, processes=[saga.process for saga in sagas])
    items = [item.to_row_json() for item in queue]
    if as_json:
        print_json(items)
        return
    console = make_console()
    if not items:
        console.print(Text(printable(f"no run needs review in {db}")))
        return
    table = Table(show_edge=False, pad_edge=False, expand=False)
    table.add_column("run / process / alert", overflow="fold")
    table.add_column("waiting step", no_wrap=True)
    table.add_column("why", overflow="fold")
    table.add_column("resolve --as", no_wrap=True)
    for item in map(printable_view, items):
        run = Text(item["operation_id"])
        run.append(f"\n{item['process']} v{item['version']}", style="dim")
        run.append(f"\nalert: {item['route'] or '-'}")
        step = Text(item["step_id"] or "-")
        step.append("\n")
        step.append_text(status_text(item["step_status"]))
        table.add_row(
            run, step, Text(item["reason"] or ""), Text("\n".join(item["resolve_as"]) or "-")
        )
    console.print(table)
    if any(item["route"] is None for item in items) and not sagas:
        console.print(Text("alert routes: pass the saga's TARGET to look them up", style="dim"))
    console.print(
        Text(
            f"resolve: {PROG} review resolve OP --step STEP --as OUTCOME --by NAME --note TEXT "
            "[TARGET]"
        )
    )


@review_app.command("resolve")
def resolve(
    operation_id: Annotated[
        str, typer.Argument(metavar="OP", help="The run's operation id.", show_default=False)
    ],
    step: Annotated[
        str,
        typer.Option("--step", metavar="STEP", help="The waiting step.", show_default=False),
    ],
    outcome: Annotated[
        Resolution,
        typer.Option(
            "--as",
            help="What you found: completed (it happened; give --result), not_applied "
            "(it did not happen), compensated (you undid it by hand).",
            show_default=False,
        ),
    ],
    by: Annotated[
        str, typer.Option("--by", metavar="WHO", help="Your name (audited).", show_default=False)
    ],
    note: Annotated[
        str,
        typer.Option(
            "--note", metavar="TEXT", help="What you checked (audited).", show_default=False
        ),
    ],
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="The saga (spec file or module:attr): continue the run now. "
            "Without it the run is left for `sagaguard worker`.",
            show_default=False,
        ),
    ] = None,
    result: Annotated[
        str | None,
        typer.Option(
            "--result",
            metavar="JSON",
            help="With --as completed: the step's result as a JSON object, e.g. "
            '\'{"payment_id": "pay_1"}\'; required when the step persists an external id.',
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """Record what a person found about a waiting step, then continue the run (with TARGET).

    The resolution is an audited "resolved" event carrying the reviewer's name and note.
    """
    from rich.text import Text

    from sagaguard.engine import Engine
    from sagaguard.engine.loading import load_saga

    for flag, value in (("--step", step), ("--by", by), ("--note", note)):
        if not value.strip():
            raise SagaGuardError(f"{flag} must not be empty")
    payload = _result(result, outcome)
    saga = load_saga(target) if target is not None else None
    with journal(db, must_exist=True) as store:
        snapshot = load_run(store, operation_id, db)
        if saga is not None and (saga.process.name, saga.process.version) != (
            snapshot.run.process,
            snapshot.run.version,
        ):
            raise SagaGuardError(
                f"{target}: is process {saga.process.name!r} v{saga.process.version}, but run "
                f"{operation_id} is a run of {snapshot.run.process!r} v{snapshot.run.version}"
            )
        with Engine(store=store, sagas=[saga] if saga else ()) as engine:
            resolved = engine.resolve(
                operation_id,
                step_id=step,
                outcome=outcome,
                by=by,
                note=note,
                result=payload,
                proceed=False,
            )
            if saga is not None:
                resolved = _continue(engine, operation_id)
        view = run_view(resolved, store.events(operation_id))
    if as_json:
        print_json(view)
        return
    console = make_console()
    console.print(Text(printable(f"resolved {step} of {operation_id} as {outcome.value} by {by}")))
    render_run(console, view)
    console.print(Text(_next_move_text(resolved, continued=saga is not None)))


def _result(text: str | None, outcome: Resolution) -> Any:
    if text is None:
        return None
    if outcome is not Resolution.COMPLETED:
        raise SagaGuardError(f"--result applies only to --as completed, not --as {outcome.value}")
    return parse_json(text, "--result")


def _continue(engine: Engine, operation_id: str) -> RunSnapshot:
    try:
        return engine.resume(operation_id)
    except SagaGuardError as exc:
        raise SagaGuardError(
            f"resolution recorded, but continuing run {operation_id} failed ({exc}); "
            f"`{PROG} worker` will continue it"
        ) from None


def _next_move_text(snapshot: RunSnapshot, *, continued: bool) -> str:
    move = next_move(snapshot, continued=continued)
    status = snapshot.run.status.value
    if move is NextMove.WORKER:
        return (
            f"the run is {status} and waits for `{PROG} worker` to continue it "
            "(or pass the saga's TARGET to continue it now)"
        )
    if move is NextMove.REVIEW:
        return f"the run needs review again: {PROG} review list"
    return f"the run is now {status}"
