"""list_runs and events: what the runs and review commands read."""

from __future__ import annotations

import pytest

from sagaguard.exceptions import RunNotFoundError, StoreError
from sagaguard.storage import JournalStore, RunStatus

from .helpers import LEASE, T0, run_becomes, start, started


def test_list_runs_returns_newest_first(store: JournalStore) -> None:
    start(store, "middle", now=T0 + 1)
    start(store, "oldest", now=T0)
    start(store, "newest", now=T0 + 2)

    assert [r.operation_id for r in store.list_runs()] == ["newest", "middle", "oldest"]


def test_runs_created_at_the_same_time_list_the_later_insert_first(store: JournalStore) -> None:
    for name in ("first", "second", "third"):
        start(store, name, now=T0)

    assert [r.operation_id for r in store.list_runs()] == ["third", "second", "first"]


def test_list_runs_filters_by_status(store: JournalStore) -> None:
    start(store, "a", now=T0)
    claim = start(store, "b", now=T0 + 1)
    start(store, "c", now=T0 + 2)
    store.record(claim, [run_becomes(RunStatus.NEEDS_MANUAL_REVIEW)], now=T0 + 3, lease_s=LEASE)

    review = store.list_runs(status=RunStatus.NEEDS_MANUAL_REVIEW)
    running = store.list_runs(status=RunStatus.RUNNING)

    assert [r.operation_id for r in review] == ["b"]
    assert review[0].status is RunStatus.NEEDS_MANUAL_REVIEW
    assert [r.operation_id for r in running] == ["c", "a"]
    assert store.list_runs(status=RunStatus.COMPLETED) == []


def test_list_runs_stops_at_the_limit(store: JournalStore) -> None:
    for n in range(5):
        start(store, f"op-{n}", now=T0 + n)

    assert [r.operation_id for r in store.list_runs(limit=2)] == ["op-4", "op-3"]
    assert store.list_runs(limit=0) == []


def test_list_runs_returns_the_same_records_as_load(store: JournalStore) -> None:
    claim = start(store, "op-1")
    store.record(claim, [started("reserve")], now=T0 + 1, lease_s=LEASE)

    assert store.list_runs() == [store.load("op-1").run]


def test_events_are_returned_in_the_order_they_were_written(store: JournalStore) -> None:
    claim = start(store, owner="worker-a")
    claim = store.record(claim, [started("reserve")], now=T0 + 1, lease_s=LEASE)
    store.release(claim, now=T0 + 2)
    store.claim("op-1", owner="worker-b", now=T0 + 3, lease_s=LEASE)

    events = store.events("op-1")

    assert [(e.seq, e.kind, e.actor) for e in events] == [
        (1, "run_created", "worker-a"),
        (2, "step_started", "worker-a"),
        (3, "released", "worker-a"),
        (4, "claimed", "worker-b"),
    ]
    assert all(e.operation_id == "op-1" for e in events)


def test_events_of_one_run_do_not_include_another_runs(store: JournalStore) -> None:
    start(store, "op-1")
    claim = start(store, "op-2")
    store.record(claim, [started("reserve")], now=T0, lease_s=LEASE)

    assert [e.kind for e in store.events("op-1")] == ["run_created"]
    assert len(store.events("op-2")) == 2


def test_events_of_an_unknown_run_raise_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.events("nope")


def test_a_closed_store_refuses_every_call(store: JournalStore) -> None:
    claim = start(store)
    store.close()

    with pytest.raises(StoreError):
        store.load("op-1")
    with pytest.raises(StoreError):
        store.list_runs()
    with pytest.raises(StoreError):
        store.record(claim, [started("reserve")], now=T0, lease_s=LEASE)


def test_info_names_the_backend_and_url(store: JournalStore) -> None:
    info = store.info()

    assert info.url == store.url
    assert info.backend


def test_the_store_satisfies_the_journal_store_protocol(store: JournalStore) -> None:
    assert isinstance(store, JournalStore)
