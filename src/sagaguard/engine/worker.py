"""The library's worker: claims runs nobody drives and drives several at once, pass after pass.

A :class:`Worker` wraps one :class:`~sagaguard.engine.executor.Engine`. Each pass it delivers
the outbox's due alerts, then claims as many runs as it has free slots (submitted, released,
or left by a dead owner; only of the sagas its engine has, see ``Engine.claim_runs``) and
hands each to a thread of its own at once, so no claim waits while its lease runs out. Idle,
it blocks in the store's ``wait_for_work`` (LISTEN/NOTIFY on PostgreSQL, a poll elsewhere).

A run that raises anything never stops the worker: it is logged and the worker goes on. A
journal that is away (:class:`~sagaguard.exceptions.SagaGuardError`) is tried again next
pass, after a growing pause. :meth:`Worker.stop` drains: the runs in hand finish and are
journaled (their leases released), and nothing new is claimed.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass

from sagaguard.bounds import BATCH, CONCURRENCY, INTERVAL
from sagaguard.engine.executor import Engine
from sagaguard.engine.retry import backoff_delay
from sagaguard.exceptions import EngineUsageError, SagaGuardError
from sagaguard.storage.base import Claim

__all__ = ["Worker", "WorkerStats"]

logger = logging.getLogger("sagaguard.worker")

_TICK_S = 0.25
"""The longest a wait lasts before it looks at ``stop()`` again (a signal only sets a flag)."""
_ALERTS_EVERY_S = 1.0
"""The least time between two looks at the outbox, however short the poll interval: an
alert is due there only once its raiser has had a whole lease to deliver it."""
_RETRY_BASE_S = 0.1
"""The first pause after a pass that could not reach the journal; it doubles up to interval."""


@dataclass(frozen=True)
class WorkerStats:
    """What a worker has done since it was made: counters, for logs and health checks."""

    passes: int = 0
    claimed: int = 0
    """Runs it claimed."""
    finished: int = 0
    """Claimed runs it drove to a stop (terminal, in review, or handed on)."""
    left: int = 0
    """Claimed runs it left alone (saga changed under its version, taken over meanwhile)."""
    failed: int = 0
    """Runs whose drive raised (poison runs, a lost journal mid-run): logged, not fatal."""
    pass_errors: int = 0
    """Passes that could not reach the journal, retried after a pause."""
    alerts_delivered: int = 0
    in_hand: int = 0
    """Runs claimed and not yet stopped: at most ``concurrency``."""


class Worker:
    """Drives up to ``concurrency`` runs at once, claiming at most ``batch`` per claim.

    A run waiting out a retry backoff keeps its slot: every run in hand competes for the CPU
    and the journal's connections while its lease runs, so the worker never holds more than
    ``concurrency``. ``interval_s`` bounds an idle wait (a wake-up ends it early) and the
    pause after a failed pass. Thread-safe:
    :meth:`stop` may be called from any thread or a signal handler.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 1,
        batch: int = 10,
        interval_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.concurrency = int(CONCURRENCY.require(concurrency, "concurrency"))
        self.batch = int(BATCH.require(batch, "batch"))
        self.interval_s = float(INTERVAL.require(interval_s, "interval_s"))
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sagaguard-worker")
        self._stopping = threading.Event()
        self._closed = False
        self._slots = threading.Condition()
        self._in_hand: set[Future[None]] = set()
        self._counts = WorkerStats()
        self._rng = random.Random()
        self._alerts_due_at = 0.0

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> WorkerStats:
        """The counters as of now."""
        with self._slots:
            counts, in_hand = self._counts, len(self._in_hand)
        return dataclasses.replace(counts, in_hand=in_hand)

    def run(self) -> None:
        """Pass after pass until :meth:`stop`, then drain: returns once the runs in hand stop."""
        self._check_open()
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    self._deliver_alerts(every_s=max(self.interval_s, _ALERTS_EVERY_S))
                    asked, started = self._fill(self.batch)
                except SagaGuardError as exc:
                    failures += 1
                    pause = backoff_delay(
                        failures, base_s=_RETRY_BASE_S, max_s=self.interval_s, rng=self._rng
                    )
                    self._count(pass_errors=1)
                    logger.error("worker pass failed, retrying in %.2fs: %s", pause, exc)
                    self._stopping.wait(pause)
                    continue
                failures = 0
                self._count(passes=1)
                if asked == 0:
                    self._wait_for_slot()
                elif started < asked:
                    self._idle()  # the queue is empty for now
        finally:
            self._drain()

    def run_once(self) -> int:
        """One pass, waited out: due alerts, then up to ``batch`` runs driven to a stop.

        Returns how many runs it claimed. A journal that is away raises (there is no next
        pass to retry in); a run that raises is logged and counted, as in :meth:`run`.
        """
        self._check_open()
        self._deliver_alerts(every_s=0.0)
        mine: list[Future[None]] = []
        while len(mine) < self.batch and not self._stopping.is_set():
            self._wait_for_slot()
            want = min(self.batch - len(mine), self._free())
            claims = self.engine.claim_runs(want) if want > 0 else []
            mine.extend(self._start(claim) for claim in claims)
            if len(claims) < want:
                break
        wait_all(mine)
        self._count(passes=1)
        return len(mine)

    def stop(self) -> None:
        """Drain: runs in hand finish and are journaled, no new claims; :meth:`run` returns."""
        self._stopping.set()

    def close(self) -> None:
        """Stop, wait for the runs in hand, and end the worker's threads (not the engine)."""
        self.stop()
        self._drain()
        self._pool.shutdown(wait=True)
        self._closed = True

    # -- internals ----------------------------------------------------------------------------

    def _fill(self, limit: int) -> tuple[int, int]:
        """Claim runs for the free slots (at most ``limit``) and start each: (asked, started)."""
        want = min(limit, self._free())
        if want <= 0:
            return 0, 0
        claims = self.engine.claim_runs(want)
        for claim in claims:
            self._start(claim)
        return want, len(claims)

    def _start(self, claim: Claim) -> Future[None]:
        with self._slots:
            self._counts = _plus(self._counts, claimed=1)
            future = self._pool.submit(self._drive, claim)
            self._in_hand.add(future)
        future.add_done_callback(self._done)
        return future

    def _drive(self, claim: Claim) -> None:
        op = claim.operation_id
        try:
            status = self.engine.drive_until_stop(claim)
        except SagaGuardError as exc:
            # The journal went away mid-run, or the lease was lost: the run keeps its journal
            # state and is taken up again once its lease runs out.
            self._count(failed=1)
            logger.error("run %s stopped: %s", op, exc)
        except Exception:
            # A poison run must never stop the worker: its other runs go on.
            self._count(failed=1)
            logger.exception("run %s raised; the worker goes on", op)
        else:
            if status is None:
                self._count(left=1)
            else:
                self._count(finished=1)
                logger.info("run %s stopped: %s", op, status.value)

    def _done(self, future: Future[None]) -> None:
        with self._slots:
            self._in_hand.discard(future)
            self._slots.notify_all()

    def _free(self) -> int:
        with self._slots:
            return self.concurrency - len(self._in_hand)

    def _wait_for_slot(self) -> None:
        with self._slots:
            while len(self._in_hand) >= self.concurrency and not self._stopping.is_set():
                self._slots.wait(_TICK_S)

    def _idle(self) -> None:
        """Wait for a wake-up (work may exist) or ``interval_s``, seeing :meth:`stop` soon."""
        deadline = time.monotonic() + self.interval_s
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.engine.store.wait_for_work(min(left, _TICK_S)):
                return

    def _deliver_alerts(self, *, every_s: float) -> None:
        # Once per every_s at most: a busy worker passes many times a second.
        now = time.monotonic()
        if now < self._alerts_due_at:
            return
        self._alerts_due_at = now + every_s
        delivered = self.engine.deliver_alerts()
        if delivered:
            self._count(alerts_delivered=delivered)
            logger.info("delivered %d alert(s) left in the outbox", delivered)

    def _drain(self) -> None:
        with self._slots:
            in_hand = list(self._in_hand)
        wait_all(in_hand)

    def _count(self, **more: int) -> None:
        with self._slots:
            self._counts = _plus(self._counts, **more)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineUsageError("this worker is closed")


def _plus(stats: WorkerStats, **more: int) -> WorkerStats:
    return dataclasses.replace(stats, **{k: getattr(stats, k) + n for k, n in more.items()})
