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
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from sagaguard.cli.app import app
from sagaguard.cli.bounds import BATCH, CONCURRENCY, INTERVAL
from sagaguard.cli.running import (
    LeaseOption,
    WebhookOption,
    WebhookRouteOption,
    _StopFlag,
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
        _StopWorker(running).installed(),
    ):
        names = ", ".join(f"{s.process.name} v{s.process.version}" for s in sagas)
        logger.info("worker %s started on %s for %s", engine.owner, redact(db), names)
        if once:
            running.run_once()
        else:
            running.run()
        logger.info("worker %s stopped", engine.owner)


class _StopWorker(_StopFlag):
    """SIGTERM and SIGINT drain the worker while installed; the previous handlers return."""

    def __init__(self, running: Worker) -> None:
        super().__init__()
        self._worker = running

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        super()._handle(signum, frame)  # says so once
        self._worker.stop()  # only sets a flag: safe inside a signal handler
