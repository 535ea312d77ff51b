"""Alerts: routing by the process's alerts map; the webhook notifier's delivery and retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from sagaguard.engine import Alert, AlertKind, WebhookNotifier
from sagaguard.engine.alerts import deliver
from sagaguard.model import Process


def _process(alerts: dict[str, str]) -> Process:
    return Process.model_validate(
        {
            "process": "p",
            "state_store": "database",
            "observability": [],
            "alerts": alerts,
            "steps": [
                {"id": "charge", "changes": ["payment", "database"], "idempotent": "no"},
                {"id": "mail", "changes": ["email"], "idempotent": "no"},
            ],
        }
    )


def test_alert_route_prefers_step_id_then_payment_then_change_kind_then_default() -> None:
    process = _process({"default": "ops", "payment": "finance", "email": "crm", "mail": "mailers"})
    assert process.alert_route(process.step("charge")) == "finance"
    assert process.alert_route(process.step("mail")) == "mailers"
    assert _process({"default": "ops"}).alert_route(process.step("mail")) == "ops"
    assert _process({}).alert_route(process.step("mail")) is None


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(body)
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def hook_url() -> Iterator[str]:
    _Hook.received = []
    _Hook.fail_first = 0
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()
    server.server_close()


ALERT = Alert(
    kind=AlertKind.COMPENSATION_FAILED,
    operation_id="op-1",
    process="checkout",
    step_id="charge_payment",
    route="finance",
    reason="refund refused",
    run_status="needs_manual_review",
    at=1.0,
)


def test_webhook_posts_the_alert_as_json(hook_url: str) -> None:
    WebhookNotifier(url=hook_url).notify(ALERT)
    assert _Hook.received == [ALERT.to_json()]
    assert _Hook.received[0]["kind"] == "compensation_failed"


def test_webhook_retries_a_failing_endpoint_within_its_bound(hook_url: str) -> None:
    _Hook.fail_first = 2
    sleeps: list[float] = []
    WebhookNotifier(url=hook_url, max_attempts=3, sleep=sleeps.append).notify(ALERT)
    assert len(_Hook.received) == 3
    assert len(sleeps) == 2


def test_webhook_gives_up_and_deliver_never_raises(hook_url: str) -> None:
    _Hook.fail_first = 10
    notifier = WebhookNotifier(url=hook_url, max_attempts=2, sleep=lambda s: None)
    with pytest.raises(OSError, match="after 2 attempts"):
        notifier.notify(ALERT)
    error = deliver(notifier, ALERT)
    assert error is not None
    assert error.startswith("OSError: webhook ")
    assert "failed after 2 attempts" in error
