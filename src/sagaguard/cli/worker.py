"""``sagaguard worker``: drives submitted runs and runs whose owner died, until told to stop.

The command only parses flags and calls :class:`sagaguard.Worker`: each pass delivers the
alerts left in the journal's outbox, claims runs of the sagas it was given (``TARGET``s and
every saga an ``--app`` module defines) for its free slots, and drives up to
``--concurrency`` of them at once. Idle, it waits for a wake-up (LISTEN/NOTIFY on
PostgreSQL) or ``--interval`` seconds. SIGTERM or SIGINT drains: the runs in hand finish and
are journaled, nothing new is claimed, and the worker exits 0.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sagaguard.cli.app import app
from sagaguard.cli.bounds import BATCH, CONCURRENCY, INTERVAL
from sagaguard.cli.running import (
    LeaseOption,
    WebhookOption,
    WebhookRouteOption,
    alert_routes,
    configure_logging,
    make_notifier,
    redact,
)
from sagaguard.cli.runs import DbOption, journal
from sagaguard.storage import DEFAULT_URL

if TYPE_CHECKING:
    from sagaguard.engine import Worker

__all__ = ["worker"]

logger = logging.getLogger("sagaguard.worker")


@app.command()
def worker(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TARGET]...",
            help="Sagas this worker can drive (spec files binding code, or module:attr).",
            show_default=False,
        ),
    ] = None,
    apps: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            metavar="MODULE",
            help="Import MODULE and drive every saga it defines at module level; repeatable.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            metavar="N",
            callback=CONCURRENCY.check(),
            help=f"Runs driven at once, each on a thread ({CONCURRENCY.text}).",
        ),
    ] = 1,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            callback=BATCH.check(),
            help=f"Runs claimed per claim at most ({BATCH.text}).",
        ),
    ] = 10,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="SECONDS",
            callback=INTERVAL.check(),
            help=f"Longest idle wait between passes ({INTERVAL.text}).",
        ),
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Do one pass (up to --batch runs) and exit.")
    ] = False,
    webhook: WebhookOption = None,
    webhook_route: WebhookRouteOption = None,
    lease: LeaseOption = 60.0,
    db: DbOption = DEFAULT_URL,
) -> None:
    """Drive submitted runs and recover runs whose owner died, until SIGTERM or SIGINT.

    Each pass also delivers alerts whose first delivery failed or never happened. Stops
    cleanly: the runs in hand are finished, then it exits 0.
    """
    from sagaguard.engine import Engine, Worker
    from sagaguard.engine.loading import load_worker_sagas

    sagas = load_worker_sagas(targets or [], apps or [])
    notifier = make_notifier(webhook, webhook_route or [], known=alert_routes(sagas))
    configure_logging(logging.INFO)
    with (
        journal(db, must_exist=False) as store,
        Engine(store=store, sagas=sagas, notifier=notifier, lease_s=lease) as engine,
        Worker(engine, concurrency=concurrency, batch=batch, interval_s=interval) as running,
        _StopOnSignal(running),
    ):
        names = ", ".join(f"{s.process.name} v{s.process.version}" for s in sagas)
        logger.info("worker %s started on %s for %s", engine.owner, redact(db), names)
        if once:
            running.run_once()
        else:
            running.run()
        logger.info("worker %s stopped", engine.owner)


class _StopOnSignal:
    """SIGTERM and SIGINT drain the worker for its lifetime; the previous handlers return."""

    def __init__(self, running: Worker) -> None:
        self._worker = running
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info(
            "received %s: finishing the runs in hand, then stopping", signal.Signals(signum).name
        )
        self._worker.stop()  # only sets a flag: safe inside a signal handler

    def __enter__(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:
                # Not the main thread (an embedding application): it handles signals itself.
                return

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
