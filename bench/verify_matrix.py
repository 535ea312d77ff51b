"""How fast ``sagaguard verify`` proves a saga: scenarios per second, and the 20-step matrix.

Builds the 20-step process of ``plan_size.py`` (a read-only check, compensatable database,
reservation and payment steps, a declared bank-transfer pivot two thirds in, steps pushed
forward after it, best-effort notifications), runs its whole fault matrix against simulated
providers on the given journal (memory by default), and prints how many scenarios ran, how
long the matrix took (median of the repeats) and scenarios per second. The checkout example
is measured too. Usage:

    .venv/bin/python bench/verify_matrix.py [--steps 20] [--repeat 3] [--db memory://]
        [--explore 0] [--json-out FILE]

Exit 1 when a scenario fails: a benchmark of a proof that does not hold measures nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_size import make_process

from sagaguard.testing.harness import Report, verify
from sagaguard.testing.subject import SubjectSource, load_subject, subject_source

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _measure(source: SubjectSource, *, repeat: int, db: str, explore: int) -> tuple[Report, float]:
    times = []
    report = None
    for _ in range(repeat):
        started = time.perf_counter()
        report = verify(source, db=db, explore=explore)
        times.append(time.perf_counter() - started)
    assert report is not None
    return report, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table; exit 1 when a scenario failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", default="memory://")
    parser.add_argument("--explore", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    subjects = [
        (f"{args.steps}-step saga (spec)", subject_source(make_process(args.steps), target="big")),
        ("checkout example (spec)", load_subject(EXAMPLES / "checkout.yaml")),
    ]
    rows = []
    failed = False
    for label, source in subjects:
        report, seconds = _measure(source, repeat=args.repeat, db=args.db, explore=args.explore)
        failed = failed or not report.passed
        count = len(report.results)
        rows.append(
            {
                "subject": label,
                "db": args.db,
                "scenarios": count,
                "failed": len(report.failed),
                "seconds": round(seconds, 3),
                "scenarios_per_s": round(count / seconds, 1),
            }
        )
    print(f"{'subject':<28} {'scenarios':>9} {'failed':>6} {'matrix s':>9} {'scenarios/s':>12}")
    for row in rows:
        print(
            f"{row['subject']:<28} {row['scenarios']:>9} {row['failed']:>6} "
            f"{row['seconds']:>9.2f} {row['scenarios_per_s']:>12.1f}"
        )
    print(f"(journal {args.db}, median of {args.repeat}, explore {args.explore})")
    if args.json_out is not None:
        with args.json_out.open("a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
