"""The fault matrix as pytest tests: one call in a test file, one test item per scenario.

    # tests/test_checkout_recovery.py
    from sagaguard.testing import verify_tests

    test_checkout = verify_tests("shop.checkout:checkout")   # or the Saga, or its factory

``pytest -k crash_after_call`` then picks scenarios by id, a failure shows what went wrong
and the command that replays it, and ``SAGAGUARD_VERIFY_SEED`` (default 0) sets the seed,
which every failure names. The matrix is built when the file is collected.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sagaguard.testing.harness import matrix_of, replay_command
from sagaguard.testing.running import run_scenario
from sagaguard.testing.scenario import Scenario
from sagaguard.testing.stores import ScenarioStores
from sagaguard.testing.subject import SubjectSource, load_subject, subject_source

__all__ = ["SEED_ENV", "verify_tests"]

SEED_ENV = "SAGAGUARD_VERIFY_SEED"


def verify_tests(
    target: str | Path | object,
    *,
    db: str = "memory://",
    seed: int | None = None,
) -> Callable[[Scenario], None]:
    """A pytest test function parametrized over ``target``'s fault matrix, one item a scenario.

    ``target`` is what ``sagaguard verify`` takes (``module:attribute`` or a spec file), or
    the object itself: a Saga, a :class:`~sagaguard.testing.Subject`, a function returning
    one. Assign the result to a name starting with ``test_``.
    """
    source: SubjectSource
    if isinstance(target, str | Path):
        source = load_subject(target)
    else:
        module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
        # module:attribute, so the replay line a failure prints can be typed as it is.
        named = f"{module}:{name}" if module and name else type(target).__name__
        source = subject_source(target, target=named)
    chosen = seed if seed is not None else int(os.environ.get(SEED_ENV, "0"))
    scenarios = matrix_of(source)

    @pytest.mark.parametrize("scenario", scenarios, ids=[s.id for s in scenarios])
    def test_scenario(scenario: Scenario) -> None:
        stores = ScenarioStores(db)
        try:
            result = run_scenario(source, scenario, stores=stores, seed=chosen)
        finally:
            stores.close()
        if not result.passed:
            lines = [f"{scenario.id} (seed {chosen}): {scenario.title}"]
            lines += [f"  {failure}" for failure in result.failures]
            lines.append(
                "  replay: " + replay_command(source.target, scenario.id, seed=chosen, db=db)
            )
            pytest.fail("\n".join(lines), pytrace=False)

    test_scenario.__doc__ = f"The fault matrix of {source.target}, one scenario per test."
    return test_scenario
