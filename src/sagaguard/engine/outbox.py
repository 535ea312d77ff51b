"""Delivering the alerts that wait in the journal's outbox.

The engine that raises an alert tries to deliver it right after the commit that holds it.
Whatever it could not deliver (its notifier failed, or it died in between) is delivered by
:func:`deliver_due`, which ``sagaguard worker`` calls on every pass: at least once, with a
growing pause between the attempts for one alert, and never by two deliverers at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sagaguard.engine.alerts import Alert, Notifier, deliver
from sagaguard.exceptions import StoreError
from sagaguard.storage.base import JournalStore

__all__ = ["RETRY_BASE_S", "RETRY_MAX_S", "deliver_due", "deliver_now", "retry_delay"]

logger = logging.getLogger("sagaguard.alerts")

RETRY_BASE_S = 30.0
"""Pause after the first failed delivery of an alert; it doubles with every failure."""
RETRY_MAX_S = 900.0
"""The longest pause between two delivery attempts of one alert."""


def retry_delay(failed_attempts: int) -> float:
    """Seconds to wait before the next attempt, after ``failed_attempts`` failures so far."""
    return float(min(RETRY_MAX_S, RETRY_BASE_S * 2 ** max(failed_attempts, 0)))


def deliver_now(store: JournalStore, notifier: Notifier, alert: Alert, *, now: float) -> bool:
    """Deliver an alert just committed to the outbox and record how it went."""
    return _attempt(store, notifier, alert, failed_before=0, clock=lambda: now)


def deliver_due(
    store: JournalStore,
    notifier: Notifier,
    *,
    clock: Callable[[], float],
    lease_s: float = 60.0,
    limit: int = 100,
) -> int:
    """Deliver up to ``limit`` outbox alerts that are due; returns how many were delivered.

    Each taken alert is hidden from other deliverers for ``lease_s`` while this one tries.
    """
    delivered = 0
    for item in store.claim_due_alerts(now=clock(), lease_s=lease_s, limit=limit):
        try:
            alert = Alert.from_json(item.payload)
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("outbox alert %s cannot be read (%s): left in place", item.alert_id, exc)
            continue
        if _attempt(store, notifier, alert, failed_before=item.attempts, clock=clock):
            delivered += 1
    return delivered


def _attempt(
    store: JournalStore,
    notifier: Notifier,
    alert: Alert,
    *,
    failed_before: int,
    clock: Callable[[], float],
) -> bool:
    error = deliver(notifier, alert)
    now = clock()
    try:
        store.settle_alert(
            alert.alert_id, now=now, error=error, retry_at=now + retry_delay(failed_before)
        )
    except StoreError as exc:
        # The alert stays due in the outbox: a later pass delivers it (perhaps once more).
        logger.error("could not record delivery of alert %s: %s", alert.alert_id, exc)
    return error is None
