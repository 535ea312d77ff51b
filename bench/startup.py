"""How long a ``sagaguard`` command takes as a real process, beside ``python -c pass``.

Each command is started as a fresh process, as a person or a script starts it, and its wall
time (start to exit) is measured; the commands take turns, round after round, so a noisy
neighbour slows them all alike, and the median of the rounds is printed. The interpreter's
own start (``python -c pass``) is measured in the same run, so the figures can be read as
"sagaguard's share" on any machine.

Targets (README, "Start-up"): ``--version`` and ``--help`` within 150 ms, ``plan`` of a
20-step spec within 300 ms. ``demo`` is measured too (it plays two sagas on a fresh SQLite
journal, so it includes real fsyncs); it has no target, only a figure to watch.

Usage: ``python bench/startup.py [--rounds 10] [--json-out FILE] [--check]``. With
``--check`` the script exits 1 when a target is missed (for a CI job on a quiet machine;
the test suite never times anything).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STEPS_IN_PLAN = 20


@dataclass(frozen=True)
class Command:
    """One measured command: a label, its argv, and the target in ms (None: no target)."""

    label: str
    argv: tuple[str, ...]
    target_ms: float | None = None


def sagaguard_argv() -> tuple[str, ...]:
    """The ``sagaguard`` console script beside this interpreter, else ``python -m sagaguard``."""
    script = Path(sys.executable).parent / "sagaguard"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (sys.executable, "-m", "sagaguard")


def spec_of(steps: int) -> str:
    """A checkout-like spec of ``steps`` steps: compensatable ones, one verified payment."""
    lines = [
        "process: startup_bench",
        "state_store: database",
        "observability: [logs, metrics]",
        "alerts: {default: oncall, payment: finance}",
        "steps:",
    ]
    for n in range(steps):
        lines += [f"  - id: step_{n:02d}", f"    action: Do part {n} of the order"]
        if n == steps // 2:
            lines += [
                "    changes: [payment]",
                "    idempotent: unknown",
                "    verify: Look the charge up by the idempotency key",
                "    compensation: Refund the charge",
                "    external_id: payment_id",
                "    timeout: 10s",
            ]
        else:
            lines += [
                "    changes: [database]",
                "    idempotent: yes",
                f"    compensation: Undo part {n}",
            ]
    return "\n".join(lines) + "\n"


def commands(workdir: Path) -> list[Command]:
    """What is measured, in the order the rounds run them."""
    spec = workdir / "bench.yaml"
    spec.write_text(spec_of(STEPS_IN_PLAN), encoding="utf-8")
    sg = sagaguard_argv()
    return [
        Command("python -c pass", (sys.executable, "-c", "pass")),
        Command("sagaguard --version", (*sg, "--version"), 150.0),
        Command("sagaguard --help", (*sg, "--help"), 150.0),
        Command(f"sagaguard plan ({STEPS_IN_PLAN} steps)", (*sg, "plan", str(spec)), 300.0),
        Command(f"sagaguard check ({STEPS_IN_PLAN} steps)", (*sg, "check", str(spec))),
        Command("sagaguard demo", (*sg, "demo")),
    ]


def wall_ms(command: Command, cwd: Path) -> float:
    """One run of ``command`` as a child process, in ms; a failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(
        command.argv, cwd=cwd, capture_output=True, timeout=120, check=False, env=_env()
    )
    elapsed = (time.perf_counter() - started) * 1000.0
    if done.returncode not in (0, 1):
        sys.exit(f"{command.label} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return elapsed


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Measure the code, not the byte-code compiler: the first round warms the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("SAGAGUARD_DEBUG", None)
    return env


def measure(rounds: int, workdir: Path) -> dict[str, list[float]]:
    """Every command once per round (after one unmeasured warm-up round)."""
    chosen = commands(workdir)
    for command in chosen:
        wall_ms(command, workdir)
    samples: dict[str, list[float]] = {c.label: [] for c in chosen}
    for _ in range(rounds):
        for command in chosen:
            samples[command.label].append(wall_ms(command, workdir))
    return samples


def report(samples: dict[str, list[float]], targets: dict[str, float | None]) -> bool:
    """Print the table; True when every target is met."""
    baseline = statistics.median(samples["python -c pass"])
    rounds = len(next(iter(samples.values())))
    print(f"process wall time, median of {rounds} rounds (ms); {sys.version.split()[0]}")
    print(f"{'command':<28} {'median':>8} {'min':>8} {'max':>8} {'- python':>9}  target")
    ok = True
    for label, values in samples.items():
        median = statistics.median(values)
        target = targets.get(label)
        verdict = ""
        if target is not None:
            met = median <= target
            ok = ok and met
            verdict = f"<= {target:.0f} {'ok' if met else 'MISSED'}"
        print(
            f"{label:<28} {median:8.1f} {min(values):8.1f} {max(values):8.1f} "
            f"{median - baseline:9.1f}  {verdict}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and with ``--check`` exit 1 on a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument("--json-out", help="append the medians as one JSON line to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="sagaguard-startup-"))
    try:
        targets = {c.label: c.target_ms for c in commands(workdir)}
        samples = measure(args.rounds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = report(samples, targets)
    if args.json_out:
        medians = {label: round(statistics.median(v), 1) for label, v in samples.items()}
        with open(args.json_out, "a", encoding="utf-8") as out:
            out.write(json.dumps({"rounds": args.rounds, "median_ms": medians}) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
