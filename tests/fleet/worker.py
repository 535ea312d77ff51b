"""One worker process of the fleet, killed and restarted by the tests.

    python -m tests.fleet.worker --db URL --app tests.fleet.saga:saga --concurrency 2

It prints ``ready OWNER`` once its journal is open and LISTEN is in effect, then claims and
drives runs until SIGTERM (it finishes the runs in hand, prints ``stopped`` and exits 0).
Idle, it waits for a NOTIFY, polling every ``--interval`` seconds as the fallback.

The pass loop has the shape of the library's ``Worker(engine, concurrency=, batch=,
interval_s=)`` with ``run()``, ``stop()`` and ``run_once()``; it is built on what the engine
offers today (``recover`` and ``wait_for_work``), so moving to that ``Worker`` changes only
:func:`make_worker`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from sagaguard.engine import Engine
from sagaguard.engine.loading import load_sagas
from sagaguard.exceptions import SagaGuardError

__all__ = ["PassLoop", "main", "make_worker"]

logger = logging.getLogger("tests.fleet.worker")


class PassLoop:
    """``concurrency`` threads, each: deliver due alerts, recover up to ``batch`` runs, wait."""

    def __init__(self, engine: Engine, *, concurrency: int, batch: int, interval_s: float):
        self.engine = engine
        self.concurrency = concurrency
        self.batch = batch
        self.interval_s = interval_s
        self._stopping = threading.Event()

    def run_once(self) -> int:
        """One pass: how many runs it drove to a stop."""
        self.engine.deliver_alerts()
        return len(self.engine.recover(limit=self.batch, stop=self._stopping.is_set))

    def run(self) -> None:
        """Pass after pass on every thread until :meth:`stop`."""
        threads = [
            threading.Thread(target=self._loop, name=f"fleet-worker-{n}")
            for n in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        """Finish the runs in hand, take no other."""
        self._stopping.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                done = self.run_once()
            except SagaGuardError as exc:
                # The journal is away (a restart): the store retried; try again next pass.
                logger.warning("pass failed: %s", exc)
                done = 0
            except Exception:
                logger.exception("pass failed")  # a poison run must not stop the worker
                done = 0
            if done < self.batch:
                self._idle()

    def _idle(self) -> None:
        deadline = time.monotonic() + self.interval_s
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            # Short waits, so that stop() is seen promptly; a NOTIFY ends the wait at once.
            if self.engine.store.wait_for_work(min(left, 0.25)):
                return


def make_worker(engine: Engine, *, concurrency: int, batch: int, interval_s: float) -> PassLoop:
    """The worker the fleet runs (the one place that names its class)."""
    return PassLoop(engine, concurrency=concurrency, batch=batch, interval_s=interval_s)


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
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
