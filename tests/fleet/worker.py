"""One worker process of the fleet, killed and restarted by the tests.

    python -m tests.fleet.worker --db URL --app tests.fleet.saga:saga --concurrency 2

It prints ``ready OWNER`` once its journal is open and LISTEN is in effect, then claims and
drives runs until SIGTERM (it finishes the runs in hand, prints ``stopped`` and exits 0).
Idle, it waits for a NOTIFY, polling every ``--interval`` seconds as the fallback.

The pass loop is the library's :class:`sagaguard.Worker`, made by :func:`make_worker`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from sagaguard.engine import Engine, Worker
from sagaguard.engine.loading import load_sagas

__all__ = ["main", "make_worker"]


def make_worker(engine: Engine, *, concurrency: int, batch: int, interval_s: float) -> Worker:
    """The worker the fleet runs (the one place that names its class)."""
    return Worker(engine, concurrency=concurrency, batch=batch, interval_s=interval_s)


def main(argv: list[str] | None = None) -> int:
    """Run one worker until SIGTERM."""
    parser = argparse.ArgumentParser(prog="tests.fleet.worker", description=__doc__)
    parser.add_argument("--db", required=True, help="journal URL")
    parser.add_argument("--app", action="append", required=True, help="module:attribute")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5, help="poll fallback, seconds")
    parser.add_argument("--lease", type=float, default=2.0, help="lease, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with Engine(store=args.db, sagas=load_sagas(args.app), lease_s=args.lease) as engine:
        worker = make_worker(
            engine, concurrency=args.concurrency, batch=args.batch, interval_s=args.interval
        )

        def on_term(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            worker.stop()

        signal.signal(signal.SIGTERM, on_term)
        engine.store.wait_for_work(0.0)  # LISTEN is in effect before "ready"
        print(f"ready {engine.owner}", flush=True)
        worker.run()
        worker.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
