"""``sagaguard run``: one run, inline; and the helpers ``sagaguard worker`` shares with it.

Exit codes of ``run`` tell a script where the run ended, beyond the shared 0/2 contract:

    0  completed
    2  bad input (target, input file, journal URL, a conflicting input under the operation id)
    3  needs manual review (a person must resolve it: ``sagaguard review list``)
    4  rolled back or failed: compensated, or failed before any effect
    5  still in progress under another live owner (its worker finishes it)
    130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM: the call in flight is journaled and
       the run handed back (:mod:`sagaguard.cli.handing_back`); a second signal exits at once
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

from sagaguard.cli.app import app
from sagaguard.cli.bounds import LEASE
from sagaguard.cli.errors import PROG, report_error
from sagaguard.cli.escapes import printable
from sagaguard.cli.runs import (
    DbOption,
    JsonOption,
    journal,
    make_console,
    print_json,
    render_run,
)
from sagaguard.cli.views import run_view
from sagaguard.exceptions import SagaGuardError, StaleOwnerError
from sagaguard.jsontext import NotJSONError, loads_strict
from sagaguard.storage import DEFAULT_URL
from sagaguard.textfile import UnreadableFileError, read_text_file
from sagaguard.vocabulary import Encounter, RunStatus

if TYPE_CHECKING:
    from sagaguard.engine import Notifier, RunResult, Saga
    from sagaguard.storage import RunSnapshot
    from sagaguard.storage.payloads import JSONValue

__all__ = ["EXIT_BUSY", "EXIT_REVIEW", "EXIT_ROLLED_BACK", "exit_code_for", "run"]

EXIT_REVIEW = 3
EXIT_ROLLED_BACK = 4
EXIT_BUSY = 5

logger = logging.getLogger("sagaguard.worker")

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="A spec file whose steps bind code (handler: module:function), "
        "or a coded saga as module.path:attribute.",
        show_default=False,
    ),
]
WebhookOption = Annotated[
    str | None,
    typer.Option(
        "--webhook",
        metavar="URL",
        help="POST alerts (needs_manual_review, compensation_failed) as JSON to URL. "
        "Default: log them on stderr.",
        show_default=False,
    ),
]
WebhookRouteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook-route",
        metavar="ROUTE=URL",
        help="POST the alerts of one route (from the process's alerts map, e.g. finance) to "
        "their own URL instead; repeatable. Needs --webhook for the other routes.",
        show_default=False,
    ),
]
LeaseOption = Annotated[
    float,
    typer.Option(
        "--lease",
        metavar="SECONDS",
        callback=LEASE.check(),
        help="How long this process owns a run between journal writes before a worker "
        f"may take it over ({LEASE.text}).",
    ),
]


def exit_code_for(status: RunStatus) -> int:
    """The exit code of ``run`` for where the run stands."""
    if status is RunStatus.COMPLETED:
        return 0
    if status is RunStatus.NEEDS_MANUAL_REVIEW:
        return EXIT_REVIEW
    if status in (RunStatus.COMPENSATED, RunStatus.FAILED):
        return EXIT_ROLLED_BACK
    return EXIT_BUSY


@app.command(
    epilog="Exit codes: 0 completed, 2 bad input, 3 needs manual review, "
    "4 compensated or failed, 5 still in progress under another live owner, "
    "130/143 interrupted (SIGINT/SIGTERM): the run is handed back."
)
def run(
    target: TargetArgument,
    operation_id: Annotated[
        str,
        typer.Option(
            "--operation-id",
            metavar="ID",
            help="The run's idempotency key: the same ID never runs twice.",
            show_default=False,
        ),
    ],
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="FILE",
            help="The run's input as a JSON file, or - for stdin. Default: null.",
            show_default=False,
        ),
    ] = None,
    webhook: WebhookOption = None,
    webhook_route: WebhookRouteOption = None,
    lease: LeaseOption = 60.0,
    as_json: JsonOption = False,
    db: DbOption = DEFAULT_URL,
) -> None:
    """Run a saga under an operation id until it completes, rolls back or needs a person.

    The same operation id with the same input returns the recorded run without calling any
    step again (or resumes it if its owner died); a different input under it is an error.
    """
    from sagaguard.cli.handing_back import run_or_hand_back
    from sagaguard.engine import Engine
    from sagaguard.engine.loading import load_saga

    if not operation_id.strip():
        raise SagaGuardError("--operation-id must not be empty")
    payload = read_json_input(input_file)
    saga = load_saga(target)
    notifier = make_notifier(webhook, webhook_route or [], known=alert_routes([saga]))
    configure_logging(logging.WARNING)
    with (
        journal(db, must_exist=False) as store,
        Engine(store=store, notifier=notifier, lease_s=lease) as engine,
    ):
        try:
            result = run_or_hand_back(engine, saga, operation_id=operation_id, payload=payload)
        except StaleOwnerError:
            # Not bad input: this process stalled past its lease and a worker took over.
            report_error(
                f"run {operation_id} was taken over by another owner while this process "
                f"drove it (its lease of {lease:g}s ran out); that owner finishes it: "
                f"{PROG} runs show {operation_id}"
            )
            raise typer.Exit(EXIT_BUSY) from None
        snapshot = result.snapshot
        view = run_view(snapshot)
    if as_json:
        print_json(view)
    else:
        console = make_console()
        if result.found is not None:
            console.print(printable(_duplicate_note(operation_id, result)))
        render_run(console, view)
        console.print(printable(_next_move(snapshot)))
    raise typer.Exit(exit_code_for(snapshot.run.status))


# -- helpers --------------------------------------------------------------------------------


def read_json_input(source: str | None) -> JSONValue:
    """The run's input: a JSON file, ``-`` for stdin, or ``None`` (no input)."""
    if source is None:
        return None
    name = "stdin" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = read_text_file(source)
        except UnreadableFileError as exc:
            raise SagaGuardError(f"--input {source}: {exc}") from None
    return parse_json(text, f"--input {name}")


def parse_json(text: str, what: str) -> JSONValue:
    """Parse JSON, or one line naming ``what``, the line and the column."""
    if not text.strip():
        raise SagaGuardError(f"{what}: empty; expected JSON (use null for no input)")
    try:
        value: JSONValue = loads_strict(text, unique_keys=True)
    except json.JSONDecodeError as exc:
        raise SagaGuardError(
            f"{what}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except NotJSONError as exc:
        raise SagaGuardError(f"{what}: {exc}") from None
    except RecursionError:
        raise SagaGuardError(f"{what}: invalid JSON: nested too deeply") from None
    return value


def redact(url: str) -> str:
    """A journal URL fit for a log line: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def alert_routes(sagas: Iterable[Saga]) -> set[str]:
    """Every alert route the sagas' ``alerts`` maps name (``finance``, ``shop-oncall``)."""
    return {route for saga in sagas for route in saga.process.alerts.values()}


def make_notifier(
    webhook: str | None, routes: list[str] | None = None, *, known: set[str] | None = None
) -> Notifier:
    """A webhook notifier for ``--webhook URL`` (and ``--webhook-route``), else logging.

    With ``known`` (the routes the sagas can raise alerts on), a ``--webhook-route`` for any
    other route is refused: a typo there would send that team's alerts to the default URL.
    """
    from sagaguard.engine.alerts import LoggingNotifier, WebhookNotifier

    route_urls: dict[str, str] = {}
    for item in routes or []:
        route, sep, url = item.partition("=")
        route = route.strip()
        if not sep or not route:
            raise SagaGuardError(f"--webhook-route {item!r}: expected ROUTE=URL")
        if known is not None and route not in known:
            names = ", ".join(sorted(known)) or "none: the process has no alerts map"
            raise SagaGuardError(
                f"--webhook-route {item!r}: no alert goes to route {route!r} "
                f"(the routes of the process: {names})"
            )
        if route in route_urls:
            raise SagaGuardError(f"--webhook-route {item!r}: route {route!r} is given twice")
        route_urls[route] = _http_url(url.strip(), "--webhook-route")
    if webhook is None:
        if route_urls:
            raise SagaGuardError(
                "--webhook-route needs --webhook: alerts of the other routes need a URL too"
            )
        return LoggingNotifier()
    return WebhookNotifier(url=_http_url(webhook, "--webhook"), routes=route_urls)


def _http_url(url: str, flag: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise SagaGuardError(f"{flag} {url!r}: expected an http:// or https:// URL")
    return url


class _PrintableFormatter(logging.Formatter):
    # A log line quotes journal text (operation ids, reasons): escape what could drive the
    # terminal, in the message only, so a traceback keeps its lines.
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = printable(record.message)
        return super().formatMessage(record)


class _StderrHandler(logging.Handler):
    # Writes to whatever sys.stderr is at the time (test runners swap it per command).
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def configure_logging(level: int) -> None:
    """Send sagaguard's log lines (alerts, worker progress) to stderr, once per process."""
    root = logging.getLogger("sagaguard")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(
            _PrintableFormatter(f"%(asctime)s {PROG} %(levelname)s: %(message)s", "%H:%M:%S")
        )
        root.addHandler(handler)


class _StopFlag:
    """Set by SIGTERM/SIGINT while installed; subclasses say what a signal does."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if not self.requested:
            name = signal.Signals(signum).name
            logger.info("received %s: finishing the runs in hand, then stopping", name)
        self.requested = True

    def installed(self) -> _Handlers:
        """Install the handlers for the worker's lifetime, then restore the previous ones."""
        return _Handlers(self)


class _Handlers:
    def __init__(self, flag: _StopFlag) -> None:
        self._flag = flag
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._flag._handle)
            except ValueError:
                # Not the main thread (an embedding application): it handles signals itself.
                return

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _duplicate_note(operation_id: str, result: RunResult) -> str:
    found = result.found
    if result.encounter is Encounter.RECORDED and found is not None:
        return (
            f"operation {operation_id} already ran ({found.value}): this is the recorded run; "
            "no step was called again"
        )
    if result.encounter is Encounter.JOINED or found is None:
        return f"operation {operation_id} is in progress under another live owner"
    return (
        f"operation {operation_id} was left {found.value} by an owner that stopped or died: resumed"
    )


def _next_move(snapshot: RunSnapshot) -> str:
    op = snapshot.run.operation_id
    status = snapshot.run.status
    if status is RunStatus.COMPLETED:
        return f"completed. Journal: {PROG} runs show {op}"
    if status is RunStatus.NEEDS_MANUAL_REVIEW:
        return f"needs manual review: {PROG} review list, then {PROG} review resolve {op} ..."
    if status is RunStatus.COMPENSATED:
        return f"rolled back: every confirmed effect was undone. Journal: {PROG} runs show {op}"
    if status is RunStatus.FAILED:
        return f"failed before any effect: nothing to undo. Journal: {PROG} runs show {op}"
    return f"still {status.value} under another owner: its worker finishes it"
