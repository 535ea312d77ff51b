"""Alerts: telling a person when automation must stop.

Two distinct kinds leave the engine: ``needs_manual_review`` (a step's outcome is unknown and
cannot be verified, or verify itself failed) and ``compensation_failed`` (undoing a step
failed: the riskiest state a run can be in). Each carries the route the process's ``alerts``
map assigns (step id, then change kind with money to the payment route, then ``default``).
Alerts leave through the journal's outbox (:mod:`sagaguard.engine.outbox`): each is committed
with the transition that raises it and kept until a notifier took it, so a crash between the
commit and the notifier delays an alert but never loses it. Delivery is at least once: a
notifier may see an alert twice (its ``alert_id`` tells a repeat). A notifier that fails
never stops the engine: the failure is logged and the delivery retried.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from sagaguard.vocabulary import AlertKind

logger = logging.getLogger("sagaguard.alerts")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as sent to a notifier."""

    kind: AlertKind
    operation_id: str
    process: str
    step_id: str | None
    route: str | None
    reason: str
    run_status: str
    at: float
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Unique per alert: a receiver that sees the same id twice is seeing one alert again."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (the webhook body)."""
        return asdict(self) | {"kind": self.kind.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_json` wrote (keys it does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**(values | {"kind": AlertKind(values["kind"])}))


class Notifier(Protocol):
    """Receives alerts. Implementations should return quickly and may raise on failure."""

    def notify(self, alert: Alert) -> None:
        """Deliver one alert."""
        ...


class LoggingNotifier:
    """The default: one ERROR log line per alert on the ``sagaguard.alerts`` logger."""

    def notify(self, alert: Alert) -> None:
        """Log the alert with its route."""
        logger.error(
            "%s: run %s (%s) step %s -> route %s: %s",
            alert.kind.value,
            alert.operation_id,
            alert.process,
            alert.step_id or "-",
            alert.route or "(no route: add alerts.default)",
            alert.reason,
        )


class RecordingNotifier:
    """Keeps alerts in a list: for tests and for embedding in another alerting system."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        """Append the alert."""
        self.alerts.append(alert)


class WebhookNotifier:
    """POSTs each alert as JSON to a URL, with a timeout and bounded retries.

    ``routes`` maps an alert route (``finance``) to its own URL; others go to ``url``.
    """

    def __init__(
        self,
        *,
        url: str,
        routes: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.routes = dict(routes or {})
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._sleep = sleep

    def notify(self, alert: Alert) -> None:
        """POST the alert; raise ``OSError`` after the last failed attempt."""
        url = self.routes.get(alert.route or "", self.url)
        body = json.dumps(alert.to_json()).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return
                    last = OSError(f"webhook answered HTTP {response.status}")
            except urllib.error.HTTPError as exc:
                exc.close()  # it holds the connection open otherwise
                last = OSError(f"webhook answered HTTP {exc.code}")
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            if attempt < self.max_attempts:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
        raise OSError(f"webhook {url} failed after {self.max_attempts} attempts: {last}")


def deliver(notifier: Notifier, alert: Alert) -> str | None:
    """Send an alert: ``None`` when delivered, else the error (logged, never raised)."""
    try:
        notifier.notify(alert)
    except Exception as exc:  # a broken alert channel must not stop recovery
        logger.exception(
            "alert %s for run %s could not be delivered", alert.kind, alert.operation_id
        )
        return f"{type(exc).__name__}: {exc}"[:300]
    return None
