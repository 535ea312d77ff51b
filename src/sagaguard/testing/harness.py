"""``verify``: run a saga's whole fault matrix (and random schedules) and report the proof.

    source = load_subject("examples/checkout_fakes.py:checkout")   # or a spec file
    report = verify(source, seed=7)
    assert report.passed, report.failed[0].failures

Each scenario runs in a fresh store of the backend ``db`` names; every failure carries its
scenario id and the seed, and :func:`replay_command` turns them into the one command line
that runs it alone again.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sagaguard.exceptions import SagaGuardError
from sagaguard.planner import Plan
from sagaguard.planner.build import plan_with
from sagaguard.testing.explore import Shrunk, random_scenario, shrink
from sagaguard.testing.matrix import MatrixBuilder, build_matrix
from sagaguard.testing.running import run_scenario
from sagaguard.testing.scenario import Scenario, ScenarioResult
from sagaguard.testing.stores import ScenarioStores
from sagaguard.testing.subject import SubjectSource

__all__ = ["Report", "matrix_of", "replay_command", "verify"]

Progress = Callable[[ScenarioResult, int, int], None]
"""Told of each result: the result, how many are done, how many there are."""


@dataclass
class Report:
    """The proof of one saga: every scenario's result, and the shrunk random failures."""

    target: str
    mode: str
    plan: Plan
    db: str
    seed: int
    results: list[ScenarioResult] = field(default_factory=list)
    shrunk: list[Shrunk] = field(default_factory=list)
    explored: int = 0
    seconds: float = 0.0
    kept: list[str] = field(default_factory=list)
    """Journal files of failing scenarios, kept for a person to read (SQLite)."""
    shared: bool = False
    """Every scenario's run talked to the same fakes (a Saga, not a function making one)."""

    @property
    def failed(self) -> list[ScenarioResult]:
        """The results with at least one failure (a random one as shrunk)."""
        by_id = {s.original.id: s.result for s in self.shrunk}
        return [by_id.get(r.scenario.id, r) for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        """True when every scenario passed."""
        return all(r.passed for r in self.results)

    def shrunk_from(self, result: ScenarioResult) -> int | None:
        """How many faults the random schedule ``result`` was shrunk from, if it was."""
        for shrunk in self.shrunk:
            if shrunk.result is result:
                return len(shrunk.original.faults)
        return None

    def replay(self, result: ScenarioResult) -> str:
        """The command that runs ``result``'s scenario alone again."""
        return replay_command(
            self.target,
            result.scenario.id,
            seed=self.seed,
            db=self.db,
            explore=self.explored if result.scenario.id.startswith("explore_") else 0,
        )


def replay_command(
    target: str, scenario_id: str, *, seed: int, db: str = "memory://", explore: int = 0
) -> str:
    """``sagaguard verify TARGET --only ID --seed N``, with what else the run needs."""
    words = ["sagaguard", "verify", target, "--only", scenario_id, "--seed", str(seed)]
    if explore:
        words[3:3] = ["--explore", str(explore)]
    if db != "memory://":
        words += ["--db", db]
    return shlex.join(words)


def matrix_of(source: SubjectSource) -> list[Scenario]:
    """The fault matrix of ``source``'s process, as it is bound."""
    return build_matrix(source.process, verify_bound=source.verify_bound)


def verify(
    source: SubjectSource,
    *,
    db: str = "memory://",
    seed: int = 0,
    only: Sequence[str] = (),
    explore: int = 0,
    progress: Progress | None = None,
) -> Report:
    """Run the matrix of ``source`` (and ``explore`` random schedules); the report of it all.

    ``only`` runs just the scenarios with those ids (``SagaGuardError`` for an unknown one).
    """
    started = time.perf_counter()
    builder = MatrixBuilder(source.process, verify_bound=source.verify_bound)
    scenarios = matrix_of(source)
    scenarios += [random_scenario(builder, seed=seed, number=n) for n in range(1, explore + 1)]
    if only:
        known = {s.id: s for s in scenarios}
        unknown = [name for name in only if name not in known]
        if unknown:
            hint = f"e.g. {', '.join(list(known)[:5])}; `--format json` lists every id"
            if unknown[0].startswith("explore_"):
                hint = f"random schedules need --explore N of at least {unknown[0][8:].lstrip('0')}"
            raise SagaGuardError(
                f"--only {unknown[0]}: no such scenario in the matrix of {source.target} ({hint})"
            )
        scenarios = [known[name] for name in dict.fromkeys(only)]
    report = Report(
        target=source.target,
        mode=source.mode,
        plan=plan_with(builder.ctx),
        db=db,
        seed=seed,
        explored=explore,
        shared=source.shared,
    )
    stores = ScenarioStores(db)
    try:
        for done, scenario in enumerate(scenarios, start=1):
            result = run_scenario(source, scenario, stores=stores, seed=seed)
            report.results.append(result)
            if not result.passed and scenario.id.startswith("explore_"):
                report.shrunk.append(
                    shrink(
                        builder,
                        result,
                        lambda s: run_scenario(source, s, stores=stores, seed=seed),
                    )
                )
            if progress is not None:
                progress(result, done, len(scenarios))
    finally:
        stores.close()
        report.kept = list(stores.kept)
    report.seconds = time.perf_counter() - started
    return report
