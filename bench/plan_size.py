"""How long planning takes as a process grows: seconds for 20, 400 and 1000 steps.

Builds processes of the given sizes (a realistic mix: a read-only check first, compensatable
database, reservation and payment steps, a declared bank-transfer pivot two thirds in,
steps pushed forward after it, best-effort notifications), then times ``plan()`` and each
renderer (median of a few runs) and prints the size of every document. Planning is linear
in the number of steps; the figures show it. Usage:

    .venv/bin/python bench/plan_size.py [--sizes 20 400 1000] [--repeat 3] [--shape mixed]

``--shape alternating`` interleaves read-only and compensatable steps before the pivot, the
shape in which a test's expected steps merge least.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.render import render

_KINDS = (
    {"changes": ["database"], "idempotent": "yes", "compensation": "Void the row"},
    {"changes": ["reservation"], "idempotent": "yes", "compensation": "Release the hold"},
    {
        "changes": ["payment"],
        "idempotent": "unknown",
        "compensation": "Refund in full",
        "verify": "shop.psp:find_charge",
    },
    {"changes": ["external_api"], "idempotent": "no", "compensation": "Cancel it"},
)


def make_process(steps: int, shape: str = "mixed") -> Process:
    """A valid process of ``steps`` steps, the same one for the same arguments."""
    pivot = max(1, steps * 2 // 3)
    data: list[dict[str, Any]] = []
    for index in range(steps):
        step: dict[str, Any] = {"id": f"s{index}", "external_id": f"s{index}_id"}
        if index == 0 or (shape == "alternating" and index < pivot and index % 2 == 0):
            step.update(changes=["none"], idempotent="yes")
            step.pop("external_id")
        elif index == pivot:
            step.update(
                changes=["payment"],
                idempotent="no",
                action="Send the SEPA transfer",
                compensation="none",
                verify="bank.api:find_transfer",
                pivot=True,
            )
        elif index > pivot and index % 5 == 0:
            step.update(changes=["email"], idempotent="no", compensation="none", required=False)
        else:
            step.update(_KINDS[index % len(_KINDS)])
        data.append(step)
    return Process.model_validate(
        {
            "process": "big",
            "state_store": "database",
            "observability": ["logs", "alerts"],
            "alerts": {"default": "ops", "payment": "finance"},
            "steps": data,
        }
    )


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the seconds planning and rendering take for each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 400, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", choices=("mixed", "alternating"), default="mixed")
    args = parser.parse_args(argv)
    print(f"{'steps':>6} {'plan s':>8} {'md s':>7} {'json s':>7} {'html s':>7}  sizes (MB)")
    for size in args.sizes:
        process = make_process(size, args.shape)
        result = plan(process)
        seconds = [_median(lambda process=process: plan(process), args.repeat)]
        sizes = []
        for fmt in ("markdown", "json", "html"):
            seconds.append(_median(lambda fmt=fmt, result=result: render(result, fmt), args.repeat))
            sizes.append(len(render(result, fmt).encode()) / 1e6)
        print(
            f"{size:>6} {seconds[0]:>8.3f} {seconds[1]:>7.3f} {seconds[2]:>7.3f} "
            f"{seconds[3]:>7.3f}  md {sizes[0]:.1f}, json {sizes[1]:.1f}, html {sizes[2]:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
