"""``review list`` and ``review resolve``: a person's finding, audited, then the run goes on.

Each case makes the runnable checkout example stop for review (the payment provider's answer
is lost and its lookup is down, or a refund is refused), then resolves it through the
command line and asserts on the journal (the audited ``resolved`` event, where the run went)
and on the providers' ledger (no second charge, the right things undone).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sagaguard.cli import app
from sagaguard.storage import open_store
from sagaguard.storage.base import Event, RunSnapshot

RUNNABLE = Path(__file__).resolve().parents[2] / "examples" / "checkout_runnable.yaml"
ORDER = {"order": {"total_cents": 4990}}
LOST_AND_UNVERIFIABLE = {"charge_payment": ["answer_lost"], "charge_payment.verify": "down"}
NEVER_SENT_AND_UNVERIFIABLE = {"charge_payment": ["no_answer"], "charge_payment.verify": "down"}
REFUND_REFUSED = {"book_delivery": "carrier_down", "charge_payment.compensate": "refused"}


class Shop:
    """A journal and a ledger in the test's directory, driven through the command line."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db = f"sqlite:///{tmp_path}/journal.sqlite3"
        self.ledger = tmp_path / "ledger.jsonl"

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--db", self.db])

    def start(self, op: str, simulate: dict[str, Any]) -> Result:
        path = self.tmp_path / f"{op}.json"
        path.write_text(json.dumps(ORDER | {"simulate": simulate}), encoding="utf-8")
        return self.invoke("run", str(RUNNABLE), "--operation-id", op, "--input", str(path))

    def resolve(self, op: str, step: str, outcome: str, *extra: str) -> Result:
        return self.invoke(
            "review",
            "resolve",
            op,
            "--step",
            step,
            "--as",
            outcome,
            "--by",
            "alice",
            "--note",
            "checked the PSP dashboard",
            *extra,
        )

    def effects(self) -> Counter[tuple[str, str]]:
        lines = [json.loads(line) for line in self.ledger.read_text().splitlines() if line]
        return Counter((e["system"], e["action"]) for e in lines)

    def journal(self, op: str) -> tuple[RunSnapshot, list[Event]]:
        store = open_store(self.db)
        try:
            return store.load(op), store.events(op)
        finally:
            store.close()


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """A fresh journal and ledger."""
    monkeypatch.setenv("CHECKOUT_LEDGER", str(tmp_path / "ledger.jsonl"))
    monkeypatch.delenv("SAGAGUARD_DB", raising=False)
    return Shop(tmp_path)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def the_resolution(events: list[Event]) -> Event:
    resolved = [e for e in events if e.kind == "resolved"]
    assert len(resolved) == 1
    return resolved[0]


def test_review_list_shows_the_waiting_run_step_reason_and_choices(shop: Shop) -> None:
    """A run stopped for review is listed with its step, why, and the resolutions that fit."""
    assert shop.start("o-1", LOST_AND_UNVERIFIABLE).exit_code == 3
    assert shop.start("o-ok", {}).exit_code == 0

    table = shop.invoke("review", "list")
    listed = json.loads(shop.invoke("review", "list", "--json").stdout)

    assert table.exit_code == 0, table.stderr
    assert "o-1" in table.stdout
    assert "o-ok" not in table.stdout
    assert "charge_payment" in table.stdout
    assert "ConnectionError" in table.stdout  # the reason, wrapped in its column
    assert [item["operation_id"] for item in listed] == ["o-1"]
    assert listed[0]["step_id"] == "charge_payment"
    assert listed[0]["step_status"] == "needs_manual_review"
    assert listed[0]["resolve_as"] == ["completed", "not_applied", "compensated"]


def test_review_list_with_the_saga_shows_the_alert_route(shop: Shop) -> None:
    """Given the saga, each waiting step shows who was alerted (money goes to finance)."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)

    listed = json.loads(shop.invoke("review", "list", str(RUNNABLE), "--json").stdout)
    table = shop.invoke("review", "list", str(RUNNABLE))

    assert listed[0]["route"] == "finance"
    assert "alert: finance" in table.stdout


def test_review_list_shows_the_alert_route_from_the_journal_alone(shop: Shop) -> None:
    """On-call often has no code at hand: the route is read from the alerting event."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)

    listed = json.loads(shop.invoke("review", "list", "--json").stdout)
    table = shop.invoke("review", "list")

    assert listed[0]["route"] == "finance"
    assert "alert: finance" in table.stdout
    _, events = shop.journal("o-1")
    alerting = [e for e in events if e.kind == "needs_manual_review"]
    assert [e.data["route"] for e in alerting] == ["finance"]


def test_review_list_when_nothing_waits(shop: Shop) -> None:
    """No waiting run is a sentence and an empty JSON list."""
    shop.start("o-ok", {})
    assert "no run needs review" in shop.invoke("review", "list").stdout
    assert json.loads(shop.invoke("review", "list", "--json").stdout) == []


def test_resolve_completed_continues_forward_without_charging_again(shop: Shop) -> None:
    """The charge did happen: resolved completed, the run finishes, still one charge."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)
    assert shop.effects()[("psp", "charge")] == 1

    result = shop.resolve(
        "o-1",
        "charge_payment",
        "completed",
        "--result",
        '{"payment_id": "pay_0001"}',
        str(RUNNABLE),
    )

    assert result.exit_code == 0, result.stderr
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "completed"
    assert snapshot.step("charge_payment").external_id == "pay_0001"
    assert snapshot.step("charge_payment").result == {"payment_id": "pay_0001"}
    assert shop.effects()[("psp", "charge")] == 1
    assert shop.effects()[("carrier", "book")] == 1
    resolved = the_resolution(events)
    assert resolved.actor == "review:alice"
    assert resolved.data["by"] == "alice"
    assert resolved.data["note"] == "checked the PSP dashboard"
    assert (resolved.from_status, resolved.to_status) == ("needs_manual_review", "completed")
    assert "now completed" in result.stdout


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        (None, "not no result"),
        ("[1]", "not an array"),
        ('"pay_1"', "not a string"),
        ('{"id": "pay_1"}', "its keys: id"),
        ('{"payment_id": null}', "non-empty"),
        ('{"payment_id": ""}', "non-empty"),
        ('{"payment_id": {"nested": 1}}', "non-empty"),
    ],
    ids=["missing", "array", "string", "other_key", "null", "empty", "object"],
)
def test_resolve_completed_needs_the_external_id_the_refund_reads(
    shop: Shop, result: str | None, fragment: str
) -> None:
    """charge_payment persists payment_id: without it the refund could never be made."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)
    extra = [] if result is None else ["--result", result]

    refused = shop.resolve("o-1", "charge_payment", "completed", *extra, str(RUNNABLE))

    assert_one_line_error(refused, "charge_payment", "payment_id", fragment)
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "needs_manual_review"
    assert snapshot.run.owner is None
    assert [e for e in events if e.kind == "resolved"] == []
    assert shop.effects()[("carrier", "book")] == 0


def test_a_completion_with_its_id_lets_a_later_rollback_refund_it(shop: Shop) -> None:
    """The id given by the reviewer is what the compensation uses: the refund goes through."""
    lost_then_no_carrier = LOST_AND_UNVERIFIABLE | {"book_delivery": "carrier_down"}
    shop.start("o-1", lost_then_no_carrier)

    result = shop.resolve(
        "o-1", "charge_payment", "completed", "--result", '{"payment_id": "pay_7"}', str(RUNNABLE)
    )

    assert result.exit_code == 0, result.stderr
    snapshot, _ = shop.journal("o-1")
    assert snapshot.run.status.value == "compensated"
    assert shop.effects()[("psp", "refund")] == 1


def test_resolve_not_applied_retries_the_step_within_its_bound(shop: Shop) -> None:
    """Nothing was charged: resolved not applied, the charge is retried once and succeeds."""
    shop.start("o-1", NEVER_SENT_AND_UNVERIFIABLE)
    assert shop.effects()[("psp", "charge")] == 0

    result = shop.resolve("o-1", "charge_payment", "not_applied", str(RUNNABLE))

    assert result.exit_code == 0, result.stderr
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "completed"
    assert snapshot.step("charge_payment").attempts == 2
    assert shop.effects()[("psp", "charge")] == 1
    assert the_resolution(events).to_status == "failed"


def test_resolve_compensated_rolls_back_the_steps_before_it(shop: Shop) -> None:
    """The charge was refunded by hand: the rollback undoes stock then order, refunds nothing."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)

    result = shop.resolve("o-1", "charge_payment", "compensated", str(RUNNABLE))

    assert result.exit_code == 0, result.stderr
    snapshot, events = shop.journal("o-1")
    assert snapshot.run.status.value == "compensated"
    undone = [e.step_id for e in events if e.kind == "step_compensated"]
    assert undone == ["reserve_stock", "create_order"]
    done = shop.effects()
    assert done[("psp", "refund")] == 0
    assert done[("inventory", "release")] == 1
    assert done[("orders", "cancel")] == 1
    assert the_resolution(events).to_status == "compensated"


def test_failed_compensation_resolves_only_as_compensated_then_rollback_continues(
    shop: Shop,
) -> None:
    """A refused refund halts the rollback; once refunded by hand the rest is undone."""
    assert shop.start("o-1", REFUND_REFUSED).exit_code == 3
    listed = json.loads(shop.invoke("review", "list", "--json").stdout)
    assert listed[0]["step_status"] == "compensation_failed"
    assert listed[0]["resolve_as"] == ["compensated"]
    assert shop.effects()[("inventory", "release")] == 0  # halted before the earlier steps

    wrong = shop.resolve("o-1", "charge_payment", "completed", str(RUNNABLE))
    assert_one_line_error(wrong, "charge_payment", "--as compensated")

    result = shop.resolve("o-1", "charge_payment", "compensated", str(RUNNABLE))

    assert result.exit_code == 0, result.stderr
    snapshot, _ = shop.journal("o-1")
    assert snapshot.run.status.value == "compensated"
    assert shop.effects()[("inventory", "release")] == 1
    assert shop.effects()[("orders", "cancel")] == 1


def test_resolve_without_target_leaves_the_run_for_the_worker(shop: Shop) -> None:
    """Without TARGET the resolution is recorded and a worker pass continues the run."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)

    result = shop.resolve(
        "o-1", "charge_payment", "completed", "--result", '{"payment_id": "pay_1"}'
    )

    assert result.exit_code == 0, result.stderr
    assert "sagaguard worker" in result.stdout
    snapshot, _ = shop.journal("o-1")
    assert snapshot.run.status.value == "running"
    assert snapshot.run.owner is None
    assert shop.effects()[("carrier", "book")] == 0

    worker = shop.invoke("worker", str(RUNNABLE), "--once")

    assert worker.exit_code == 0, worker.stderr
    snapshot, _ = shop.journal("o-1")
    assert snapshot.run.status.value == "completed"
    assert shop.effects()[("psp", "charge")] == 1


def test_resolve_json_prints_the_run_with_the_audited_event(shop: Shop) -> None:
    """``--json`` prints the run after the resolution, the resolved event included."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)

    view = json.loads(
        shop.resolve("o-1", "charge_payment", "compensated", "--json", str(RUNNABLE)).stdout
    )

    assert view["status"] == "compensated"
    resolved = [e for e in view["events"] if e["kind"] == "resolved"]
    assert resolved[0]["actor"] == "review:alice"


def test_resolving_a_run_that_does_not_wait_exits_2(shop: Shop) -> None:
    """A completed run has nothing to resolve: one line, nothing journaled."""
    shop.start("o-ok", {})
    _, before = shop.journal("o-ok")

    result = shop.resolve("o-ok", "charge_payment", "completed", str(RUNNABLE))

    assert_one_line_error(result, "o-ok", "completed", "not needs_manual_review")
    assert len(shop.journal("o-ok")[1]) == len(before)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--step", "no_such_step"], ("no_such_step",)),
        (["--as", "maybe"], ("--as", "completed")),
        (["--as", "not_applied", "--result", "{}"], ("--result", "--as completed")),
        (["--result", "{bad"], ("--result", "line 1, column 2")),
        (["--by", " "], ("--by",)),
        (["--op", "nope"], ("'nope'",)),
        (["--target", "signup"], ("'signup'", "'checkout'")),
    ],
    ids=[
        "unknown_step",
        "bad_outcome",
        "result_needs_completed",
        "bad_result_json",
        "blank_reviewer",
        "unknown_run",
        "target_of_another_process",
    ],
)
def test_bad_resolution_input_exits_2_in_one_line(
    shop: Shop, args: list[str], fragments: tuple[str, ...]
) -> None:
    """Every bad resolution is one line naming what is wrong; the run keeps waiting."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)
    values = {"--op": "o-1", "--step": "charge_payment", "--as": "completed", "--by": "alice"}
    target = None
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag == "--target":
            # The same code under another process name.
            spec = RUNNABLE.read_text().replace("process: checkout", f"process: {value}")
            (shop.tmp_path / "other.yaml").write_text(spec, encoding="utf-8")
            target = str(shop.tmp_path / "other.yaml")
        else:
            values[flag] = value
    argv = ["review", "resolve", values.pop("--op")]
    argv += [part for pair in values.items() for part in pair] + ["--note", "n"]
    if target is not None:
        argv.append(target)

    assert_one_line_error(shop.invoke(*argv), *fragments)
    assert shop.journal("o-1")[0].run.status.value == "needs_manual_review"


def test_missing_required_option_exits_2(shop: Shop) -> None:
    """``--by`` and ``--note`` are required: the audit trail needs who and why."""
    shop.start("o-1", LOST_AND_UNVERIFIABLE)
    result = shop.invoke(
        "review", "resolve", "o-1", "--step", "charge_payment", "--as", "completed"
    )
    assert_one_line_error(result, "Missing option")
