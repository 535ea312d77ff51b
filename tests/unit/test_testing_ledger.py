"""The ledgers of external calls: what is recorded, that it round-trips, that a file survives."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from sagaguard.engine import StepContext
from sagaguard.testing import FileLedger, Ledger, LedgerEntry, LedgerKind, MemoryLedger


def _ctx(step_id: str = "charge", attempt: int = 2) -> StepContext:
    return StepContext(
        operation_id="op",
        step_id=step_id,
        attempt=attempt,
        idempotency_key=f"op:{step_id}",
        fencing_token=7,
        input=None,
        results={},
        external_ids={},
    )


@pytest.fixture(params=["memory", "file"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """Each ledger kind, with a clock that reads 100.0."""
    if request.param == "memory":
        return MemoryLedger(clock=lambda: 100.0)
    return FileLedger(path=tmp_path / "calls.jsonl", clock=lambda: 100.0)


def test_record_takes_run_step_key_attempt_and_token_from_the_context(ledger: Ledger) -> None:
    entry = ledger.record(_ctx(), "call")
    assert entry == LedgerEntry(
        operation_id="op",
        step_id="charge",
        kind=LedgerKind.CALL,
        idempotency_key="op:charge",
        attempt=2,
        pid=os.getpid(),
        time=100.0,
        fencing_token=7,
    )
    assert ledger.entries() == [entry]


def test_select_filters_and_called_answers_by_key(ledger: Ledger) -> None:
    ledger.record(_ctx("charge", 1), LedgerKind.CALL)
    ledger.record(_ctx("charge", 1), LedgerKind.VERIFY)
    ledger.record(_ctx("reserve", 1), LedgerKind.COMPENSATE)
    assert [e.kind for e in ledger.select(step_id="charge")] == [LedgerKind.CALL, LedgerKind.VERIFY]
    assert [e.step_id for e in ledger.select(kind="compensate")] == ["reserve"]
    assert ledger.select(pid=os.getpid() + 1) == []
    assert ledger.called("op:charge")
    assert not ledger.called("op:reserve"), "a compensation is not a forward call"
    assert len(ledger) == 3
    assert [e.step_id for e in ledger] == ["charge", "charge", "reserve"]


def test_an_entry_round_trips_through_json() -> None:
    entry = LedgerEntry("op", "ship", LedgerKind.VERIFY, "op:ship", 3, 42, 1.5, None)
    text = json.dumps(entry.to_json())
    assert LedgerEntry.from_json(json.loads(text)) == entry


def test_a_malformed_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="not a ledger entry"):
        LedgerEntry.from_json({"operation_id": "op"})


def test_a_file_ledger_is_read_back_by_another_instance(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    writer = FileLedger(path=path)
    written = [writer.record(_ctx("charge", n), "call") for n in (1, 2)]
    assert FileLedger(path=path).entries() == written
    assert len(path.read_text().splitlines()) == 2, "one JSON line per entry"


def test_every_append_is_fsynced_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = FileLedger(path=tmp_path / "calls.jsonl")
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    ledger.record(_ctx(), "call")
    ledger.record(_ctx(), "verify")
    assert len(synced) == 2


def test_a_torn_last_line_from_a_killed_writer_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    ledger = FileLedger(path=path)
    kept = ledger.record(_ctx(), "call")
    with path.open("a") as handle:
        handle.write('{"operation_id": "op", "step_')  # the writer died mid-line
    assert ledger.entries() == [kept]


def test_a_corrupt_complete_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    ledger = FileLedger(path=path)
    ledger.record(_ctx(), "call")
    with path.open("a") as handle:
        handle.write("not json\n")
    with pytest.raises(ValueError, match=r"calls.jsonl:2: bad ledger line"):
        ledger.entries()


def test_concurrent_appends_from_threads_all_land_as_whole_lines(tmp_path: Path) -> None:
    ledger = FileLedger(path=tmp_path / "calls.jsonl")

    def write(step: str) -> None:
        for attempt in range(1, 21):
            ledger.record(_ctx(step, attempt), "call")

    threads = [threading.Thread(target=write, args=(f"s{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = ledger.entries()
    assert len(entries) == 80
    for n in range(4):
        assert [e.attempt for e in entries if e.step_id == f"s{n}"] == list(range(1, 21))
