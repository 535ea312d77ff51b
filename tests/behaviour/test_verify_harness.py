"""``verify`` end to end: every example proved, bugs caught, replays exact, on every store."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagaguard.storage import open_store
from sagaguard.testing import load_subject, verify
from sagaguard.testing.explore import _smaller, scenario_of
from sagaguard.testing.harness import Report
from sagaguard.testing.matrix import MatrixBuilder
from sagaguard.testing.running import run_scenario
from sagaguard.testing.scenario import ScenarioKind
from sagaguard.testing.stores import ScenarioStores
from sagaguard.testing.subject import subject_source
from tests import pg
from tests.behaviour.test_verify_mutants import charge_saga

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return


def failures(report: Report) -> list[str]:
    return [f"{r.scenario.id}: {f}" for r in report.failed for f in r.failures]


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_example_spec_survives_its_whole_matrix(spec: Path) -> None:
    """Every plan test with its id, and every scenario the harness adds, on simulated providers."""
    source = load_subject(spec)
    report = verify(source, seed=3)
    assert report.passed, failures(report)
    ids = [r.scenario.id for r in report.results]
    assert [t.id for t in report.plan.tests] == ids[: len(report.plan.tests)]
    assert len(ids) == len(set(ids))
    kinds = {r.scenario.kind for r in report.results}
    assert {
        ScenarioKind.PLAN,
        ScenarioKind.CRASH,
        ScenarioKind.DUPLICATE,
        ScenarioKind.RACE,
    } <= kinds


def test_the_checkout_code_survives_against_its_fakes() -> None:
    report = verify(load_subject("checkout_saga:checkout"), seed=5, explore=40)
    assert report.mode == "code"
    assert report.passed, failures(report)


def test_the_buggy_checkout_is_caught_for_each_of_its_three_bugs() -> None:
    report = verify(load_subject("checkout_saga_buggy:checkout"), seed=5)
    assert not report.passed
    found = {(f.check, f.step) for r in report.failed for f in r.failures}
    messages = " ".join(f.message for r in report.failed for f in r.failures)
    assert "without an idempotency key" in messages, "bug 1: the reservation's key is never sent"
    assert ("verify", "charge_payment") in found, "bug 2: verify looks up the wrong key"
    assert ("world", "charge_payment") in found, "bug 2: so the card is charged twice"
    timeout = {(f.check, f.step) for f in _result(report, "timeout_charge_payment").failures}
    assert ("world", "charge_payment") in timeout
    undo = _result(report, "failure_after_reserve_stock")
    assert any("compensation_failed" in f.message for f in undo.failures), "bug 3: the release"


def _result(report: Report, scenario_id: str) -> object:
    [found] = [r for r in report.results if r.scenario.id == scenario_id]
    return found


def test_a_failure_replays_alone_with_its_seed_and_fails_the_same_way() -> None:
    source = load_subject("checkout_saga_buggy:checkout")
    report = verify(source, seed=9)
    first = report.failed[0]
    words = shlex.split(report.replay(first))
    assert words[:3] == ["sagaguard", "verify", "checkout_saga_buggy:checkout"]
    only = words[words.index("--only") + 1]
    seed = int(words[words.index("--seed") + 1])
    assert (only, seed) == (first.scenario.id, 9)
    again = verify(source, seed=seed, only=[only])
    [replayed] = again.results
    assert [str(f) for f in replayed.failures] == [str(f) for f in first.failures]


def test_random_schedules_are_drawn_from_the_seed() -> None:
    source = load_subject(EXAMPLES / "checkout.yaml")
    builder = MatrixBuilder(source.process, verify_bound=source.verify_bound)
    from sagaguard.testing.explore import random_scenario

    first = [random_scenario(builder, seed=4, number=n).faults for n in range(1, 30)]
    again = [random_scenario(builder, seed=4, number=n).faults for n in range(1, 30)]
    other = [random_scenario(builder, seed=5, number=n).faults for n in range(1, 30)]
    assert first == again
    assert first != other
    assert max(len(f) for f in first) > 1, "several faults per run"


def test_a_failing_random_schedule_is_shrunk_to_a_minimal_one() -> None:
    """Every schedule one fault smaller than the reported one passes."""
    source = subject_source(lambda: charge_saga(verify_lies=True), target="pay")
    report = verify(source, seed=2, explore=60, only=[f"explore_{n:04d}" for n in range(1, 61)])
    assert report.shrunk, "a verify that lies fails some schedule"
    builder = MatrixBuilder(source.process, verify_bound=source.verify_bound)
    stores = ScenarioStores()
    for shrunk in report.shrunk:
        minimal = shrunk.result.scenario.faults
        assert len(minimal) <= len(shrunk.original.faults)
        assert not shrunk.result.passed
        for smaller in _smaller(minimal):
            candidate = scenario_of(builder, shrunk.original.id, smaller)
            assert run_scenario(source, candidate, stores=stores, seed=2).passed


SUBSET = (
    "failure_after_charge_payment",
    "crash_before_call_charge_payment",
    "owners_racing_charge_payment",
    "duplicate_concurrent",
    "compensation_fails_once_reserve_stock",
)


def test_each_scenario_runs_in_a_fresh_sqlite_journal(tmp_path: Path) -> None:
    report = verify(
        load_subject(EXAMPLES / "checkout_runnable.yaml"),
        db=f"sqlite:///{tmp_path}",
        only=SUBSET,
    )
    assert report.passed, failures(report)
    assert list(tmp_path.iterdir()) == [], "a passing scenario's journal is removed"


def test_a_failing_scenario_keeps_its_sqlite_journal_for_a_person(tmp_path: Path) -> None:
    report = verify(
        load_subject("checkout_saga_buggy:checkout"),
        db=f"sqlite:///{tmp_path}",
        only=["timeout_charge_payment"],
    )
    assert not report.passed
    [kept] = report.kept
    store = open_store(f"sqlite:///{kept}", read_only=True)
    try:
        [run] = store.list_runs()
        assert run.operation_id == "timeout_charge_payment"
    finally:
        store.close()


@pytest.mark.postgres
def test_each_scenario_runs_in_a_fresh_postgres_schema() -> None:
    pg.require()
    report = verify(
        load_subject(EXAMPLES / "checkout_runnable.yaml"), db=pg.server_url(), only=SUBSET
    )
    assert report.passed, failures(report)
