"""Reads: consistent snapshots, frozen records, JSON payloads that round-trip and never alias."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage import JournalStore, RunSnapshot, StepChange, StepStatus, Transition
from sagaguard.storage.payloads import EncodedJSON

from .helpers import LEASE, T0, completed, new_run, start, started, step

NESTED: dict[str, Any] = {
    "名前": "Zoë 🚀",
    "quote": 'she said "ok"\nthen\tleft \\ \u2028',
    "numbers": [0, -1, 2**53, 1.5, -0.25, 1e-300],
    "flags": [True, False, None],
    "deep": {"a": [{"b": [[], {}, [{"c": "d"}]]}]},
    "empty": "",
}


def test_loading_an_unknown_run_raises_run_not_found(store: JournalStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.load("nope")


def test_load_returns_the_run_with_its_steps_in_process_order(store: JournalStore) -> None:
    start(store, steps=("zeta", "alpha", "mid"))

    snapshot = store.load("op-1")

    assert [s.step_id for s in snapshot.steps] == ["zeta", "alpha", "mid"]
    assert snapshot.step("alpha").position == 1
    with pytest.raises(KeyError):
        snapshot.step("missing")


def test_a_load_never_sees_part_of_a_record(store: JournalStore) -> None:
    """The run row and the step rows of one load come from the same committed state."""
    claim = start(store)
    done = threading.Event()
    seen: list[RunSnapshot] = []

    def write() -> None:
        current = claim
        try:
            for k in range(1, 150):
                both = [
                    step("bump", name, StepStatus.STARTED, attempts=k)
                    for name in ("reserve", "ship")
                ]
                current = store.record(current, both, now=T0 + k, lease_s=LEASE)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        seen.append(store.load("op-1"))
    writer.join()

    assert store.load("op-1").step("ship").attempts == 149
    for snapshot in seen:
        written = snapshot.run.updated_at - T0
        assert snapshot.step("reserve").attempts == written
        assert snapshot.step("ship").attempts == written


def test_records_are_frozen(store: JournalStore) -> None:
    start(store)
    snapshot = store.load("op-1")

    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.run.status = "completed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.steps[0].attempts = 9  # type: ignore[misc]


def test_unicode_and_nested_payloads_round_trip_exactly(store: JournalStore) -> None:
    claim = start(store, input=NESTED)
    store.record(
        claim,
        [
            started("reserve"),
            completed("reserve", seq=1, result=NESTED),
            Transition(kind="note", data=NESTED, reason="ünïcode reason ✓"),
        ],
        now=T0 + 1,
        lease_s=LEASE,
    )

    snapshot = store.load("op-1")
    assert snapshot.run.input == NESTED
    assert snapshot.step("reserve").result == NESTED
    note = store.events("op-1")[-1]
    assert note.data == NESTED
    assert note.reason == "ünïcode reason ✓"


def test_tuples_come_back_as_lists_like_any_json_payload(store: JournalStore) -> None:
    start(store, input={"pair": (1, 2)})

    assert store.load("op-1").run.input == {"pair": [1, 2]}


def test_mutating_a_returned_payload_does_not_change_the_journal(store: JournalStore) -> None:
    claim = start(store)
    store.record(
        claim,
        [completed("reserve", seq=1, result={"ids": [1]}), Transition(kind="n", data={"k": [1]})],
        now=T0,
        lease_s=LEASE,
    )

    first = store.load("op-1")
    first.run.input["order"] = "tampered"
    first.step("reserve").result["ids"].append(2)
    store.events("op-1")[-1].data["k"].append(2)

    again = store.load("op-1")
    assert again.run.input["order"] == "A-17"
    assert again.step("reserve").result == {"ids": [1]}
    assert store.events("op-1")[-1].data == {"k": [1]}


def test_mutating_the_callers_objects_after_a_write_does_not_change_the_journal(
    store: JournalStore,
) -> None:
    payload: dict[str, Any] = {"items": [1]}
    claim = store.create_run(new_run(input=payload), owner="w", now=T0, lease_s=LEASE).claim
    assert claim is not None
    result: dict[str, Any] = {"charge": ["ch_1"]}
    store.record(claim, [completed("reserve", seq=1, result=result)], now=T0, lease_s=LEASE)

    payload["items"].append(2)
    result["charge"].append("ch_2")

    snapshot = store.load("op-1")
    assert snapshot.run.input == {"items": [1]}
    assert snapshot.step("reserve").result == {"charge": ["ch_1"]}


def test_a_result_of_json_null_inside_a_structure_survives(store: JournalStore) -> None:
    claim = start(store)
    store.record(
        claim,
        [
            completed("reserve", seq=1, result=[None]),
            completed("charge", seq=2, result=0),
            completed("ship", seq=3, result=""),
        ],
        now=T0,
        lease_s=LEASE,
    )

    snapshot = store.load("op-1")
    assert snapshot.step("reserve").result == [None]
    assert snapshot.step("charge").result == 0
    assert snapshot.step("ship").result == ""
    assert snapshot.step("ship").status is StepStatus.COMPLETED


def test_a_result_encoded_once_by_the_caller_is_stored_as_given(store: JournalStore) -> None:
    """The engine encodes a result once (to hand later steps what a resumed run reads)."""
    claim = start(store)
    payload = EncodedJSON.of({"payment_id": "p-1", "legs": (1, 2), 7: "seven"})

    store.record(claim, [completed("charge", seq=1, result=payload)], now=T0, lease_s=LEASE)

    charge = store.load("op-1").step("charge")
    assert charge.result == payload.value == {"payment_id": "p-1", "legs": [1, 2], "7": "seven"}


def test_a_nul_character_in_a_reason_is_stored_alike_everywhere(store: JournalStore) -> None:
    """PostgreSQL cannot hold NUL in text: every store writes it as U+FFFD."""
    claim = start(store)

    store.record(
        claim,
        [
            Transition(
                "step_failed",
                StepChange("charge", StepStatus.FAILED, failure_reason="bad\x00byte"),
                reason="bad\x00byte",
            )
        ],
        now=T0,
        lease_s=LEASE,
    )

    assert store.load("op-1").step("charge").failure_reason == "bad\ufffdbyte"
    assert store.events("op-1")[-1].reason == "bad\ufffdbyte"
