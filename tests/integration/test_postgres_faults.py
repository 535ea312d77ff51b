"""Database faults: killed backends and a restarted server; the store and its LISTEN come back.

Backends are killed with ``pg_terminate_backend``, found by the ``application_name`` each
store's URL carries. One test restarts the server itself (it disturbs every client for a
moment, so there is only one). The wake-up is tested by what wakes the waiter: a NOTIFY
from another store, never the store's own in-process signal.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import pytest

from sagaguard.storage import NewRun, StepChange, StepStatus, Transition
from sagaguard.storage.postgres import PostgresStore
from tests import pg
from tests.pg import schema

pytestmark = pytest.mark.postgres
__all__ = ["schema"]  # the fixture, used by name

T0 = 1_700_000_000.0


def _store(schema: str, name: str) -> PostgresStore:
    return PostgresStore.from_url(
        pg.store_url(schema, clock="caller", application_name=name, reconnect_s="60")
    )


def _kill(application_name: str) -> int:
    import psycopg

    with psycopg.connect(pg.server_url(), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def _new(operation_id: str) -> NewRun:
    return NewRun(operation_id, "checkout", "1", {"n": operation_id}, ("reserve",))


def _wait_until(condition: Any, what: str, *, rounds: int = 600) -> None:
    """Poll a condition a bounded number of times (a fault's aftermath, not a speed test)."""
    for _ in range(rounds):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting: {what}")


def _woken_by_another_store(waiter: PostgresStore, other: PostgresStore, tag: str) -> bool:
    """Submit runs through ``other`` until ``waiter`` wakes (it cannot say when it waits)."""
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(waiter.wait_for_work(30.0)))
    thread.start()
    for number in range(100):
        other.create_run(_new(f"{tag}-{number}"), owner=None, now=T0, lease_s=30.0)
        thread.join(timeout=0.1)
        if not thread.is_alive():
            break
    thread.join(timeout=35.0)
    return woke == [True]


def test_a_notify_from_another_process_wakes_an_idle_worker(schema: str) -> None:
    waiter, other = _store(schema, f"{schema}_w"), _store(schema, f"{schema}_o")
    try:
        assert waiter.wait_for_work(0.01) is False  # starts LISTEN; nothing to do yet
        assert _woken_by_another_store(waiter, other, "first")
    finally:
        waiter.close()
        other.close()


def test_killed_backends_are_replaced_and_listen_comes_back(schema: str) -> None:
    name = f"{schema}_k"
    waiter, other = _store(schema, name), _store(schema, f"{schema}_o")
    try:
        waiter.wait_for_work(0.01)
        claim = waiter.create_run(_new("op-1"), owner="w", now=T0, lease_s=30.0).claim
        assert claim is not None

        assert _kill(name) >= 2, "the pool's connection and the LISTEN connection"

        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED))
        waiter.record(claim, [started], now=T0 + 1, lease_s=30.0)
        assert waiter.load("op-1").step("reserve").status is StepStatus.STARTED
        _wait_until(lambda: waiter.info().details["listen_reconnects"] != "0", "LISTEN is back")
        assert _woken_by_another_store(waiter, other, "after-kill")
    finally:
        waiter.close()
        other.close()


def test_a_restarted_server_is_reconnected_to_and_listen_works_again(schema: str) -> None:
    """The one test that restarts PostgreSQL: writes resume and the wake-up is heard again."""
    command = pg.cluster_command("restart")
    waiter, other = _store(schema, f"{schema}_r"), _store(schema, f"{schema}_o")
    try:
        waiter.wait_for_work(0.01)
        claim = waiter.create_run(_new("op-1"), owner="w", now=T0, lease_s=30.0).claim
        assert claim is not None

        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        _wait_until(lambda: pg.unavailable.__wrapped__() is None, "the server accepts again")

        started = Transition("step_started", StepChange("reserve", StepStatus.STARTED))
        waiter.record(claim, [started], now=T0 + 1, lease_s=30.0)
        assert waiter.load("op-1").step("reserve").status is StepStatus.STARTED
        _wait_until(lambda: waiter.info().details["listen_reconnects"] != "0", "LISTEN is back")
        assert _woken_by_another_store(waiter, other, "after-restart")
    finally:
        waiter.close()
        other.close()
