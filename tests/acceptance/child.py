"""One process of the shop: starts, resumes or recovers a run, optionally dying at a fault point.

    python -m tests.acceptance.child --journal J --ledger L --kind verify \
        --action run --op op-1 --input '{}' --crash after_call:charge

With ``--crash`` the process kills itself with SIGKILL at that point (no cleanup, no output);
with ``--die-on-alert`` it does so the moment it would hand an alert to its notifier.
Otherwise it prints one JSON line: what it did (statuses, recovered runs, busy), its pid and
the alerts it sent. ``--clock-offset`` shifts its clock, so it sees earlier leases expired
without the test waiting for them; with ``--barrier`` it prints ``ready`` once set up and
waits for a line on stdin, so racing processes begin together (the test releases them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from sagaguard import RunBusyError
from sagaguard.engine import Alert, Engine, NoFaults, RecordingNotifier
from sagaguard.engine.faults import FaultInjector
from sagaguard.storage.sqlite import SQLiteStore
from sagaguard.testing import CrashAt, FileLedger
from tests.acceptance.shop import KINDS, build


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="child", description=__doc__)
    parser.add_argument("--journal", required=True, help="SQLite journal file")
    parser.add_argument("--ledger", required=True, help="JSON-lines ledger of external calls")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--action", choices=("run", "recover", "resume"), required=True)
    parser.add_argument("--op", default="op-1", help="operation_id (run, resume)")
    parser.add_argument("--input", default="{}", help="run input as JSON")
    parser.add_argument(
        "--count",
        type=int,
        help="run: start this many runs, OP-0, OP-1, ... (ship fails in every 3rd)",
    )
    parser.add_argument("--crash", help="point[:step[:attempt]] where to die with SIGKILL")
    parser.add_argument(
        "--die-on-alert", action="store_true", help="SIGKILL instead of sending an alert"
    )
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to now")
    parser.add_argument("--lease-s", type=float, default=60.0)
    parser.add_argument(
        "--barrier", action="store_true", help="print ready, then wait for a line on stdin"
    )
    return parser.parse_args(argv)


class DyingNotifier(RecordingNotifier):
    """The process dies between the commit that raised an alert and its delivery."""

    def notify(self, alert: Alert) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Do one action on the journal and report it as a JSON line."""
    args = _parse(argv)
    ledger = FileLedger(path=args.ledger)
    saga = build(args.kind, ledger)
    faults: FaultInjector = CrashAt.from_text(args.crash, mode="kill") if args.crash else NoFaults()
    notifier = DyingNotifier() if args.die_on_alert else RecordingNotifier()
    offset = args.clock_offset
    engine = Engine(
        store=SQLiteStore(path=args.journal),
        sagas=[saga],
        notifier=notifier,
        clock=lambda: time.time() + offset,
        faults=faults,
        owner=f"child-{os.getpid()}",
        lease_s=args.lease_s,
    )
    if args.barrier:
        print("ready", flush=True)
        sys.stdin.readline()
    report: dict[str, Any] = {"pid": os.getpid(), "owner": engine.owner}
    with engine:
        if args.action == "run" and args.count is not None:
            report["status"] = [
                engine.run(
                    saga, operation_id=f"{args.op}-{n}", input={"ship_fails": n % 3 == 0}
                ).run.status.value
                for n in range(args.count)
            ]
        elif args.action == "run":
            snapshot = engine.run(saga, operation_id=args.op, input=json.loads(args.input))
            report["status"] = snapshot.run.status.value
        elif args.action == "recover":
            recovered = engine.recover()
            report["recovered"] = [s.run.operation_id for s in recovered]
            report["status"] = [s.run.status.value for s in recovered]
        else:
            try:
                report["status"] = engine.resume(args.op).run.status.value
            except RunBusyError as exc:
                report["busy"] = str(exc)
        engine.store.close()
    report["alerts"] = [alert.to_json() for alert in notifier.alerts]
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
