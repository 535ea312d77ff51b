"""Narration: each journal event told in one plain-English line, attempts counted per step."""

from __future__ import annotations

from tests.unit.journal_records import event

from sagaguard.demo import SCENARIOS, play
from sagaguard.operator import Narrator, narrate_events
from sagaguard.storage import open_store
from sagaguard.storage.base import Event
from sagaguard.vocabulary import EventKind


def _generic(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


def test_the_narrator_counts_attempts_per_step_and_undo_attempts_apart() -> None:
    """Each started event is told with its own attempt number, forward and undo separately."""
    lines = narrate_events(
        [
            event(1, "step_started", "book"),
            event(2, "step_failed", "book", reason="HTTP 503"),
            event(3, "step_started", "book"),
            event(4, "step_started", "pay"),
            event(5, "compensation_started", "pay"),
        ]
    )
    assert lines[0].startswith("Attempt 1 of book")
    assert "HTTP 503" in lines[1]
    assert lines[2].startswith("Attempt 2 of book")
    assert lines[3].startswith("Attempt 1 of pay")
    assert lines[4].startswith("Undo attempt 1 of pay")


def test_the_narrator_tells_who_resolved_what_and_why() -> None:
    line = Narrator().tell(
        event(
            9,
            "resolved",
            "pay",
            data={"by": "alice", "as": "completed", "note": "seen in the dashboard"},
        )
    )
    assert "alice" in line
    assert "completed" in line
    assert "seen in the dashboard" in line


def test_every_kind_of_the_vocabulary_has_its_own_sentence() -> None:
    """A new event kind without a sentence would be told generically: add one beside it."""
    for kind in EventKind:
        line = Narrator().tell(event(1, kind.value, "pay", reason="why"))
        assert not line.startswith(_generic(kind.value)), kind


def test_a_kind_an_older_journal_holds_is_told_generically() -> None:
    line = Narrator().tell(event(1, "step_teleported", "pay", reason="why"))

    assert line == "Step teleported on pay (why)."


def test_every_event_the_demo_writes_has_its_own_narration() -> None:
    """No event of a real run falls back to the generic wording."""
    store = open_store("memory://")
    events: list[Event] = []
    for scenario in SCENARIOS:
        play(scenario, store=store, on_event=events.append, on_effect=lambda entry: None)
    lines = narrate_events(events)
    generic = [
        line
        for told, line in zip(events, lines, strict=True)
        if line.startswith(_generic(told.kind))
    ]
    assert generic == []
    assert len({e.kind for e in events}) >= 12
