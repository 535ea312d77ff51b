"""The reproduction of issue 6 with the real CLI: a refusal after the transfer undoes nothing.

A spec of three steps: ``debit`` (compensatable), ``transfer`` (``compensation: none``, so
the derived point of no return), then ``post_ledger``, which refuses. ``sagaguard run`` used
to call ``undo debit`` and exit 4; the money had already left. Now the run waits for a
person (exit 3) and nothing is undone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sagaguard.storage import RunStatus, StepStatus, open_store

SPEC = """\
process: payout
state_store: database
observability: [logs, alerts]
alerts: {default: payments-oncall}
steps:
  - id: debit
    changes: [payment]
    idempotent: yes
    handler: payout_handlers:debit
    compensation: Reverse the debit
    compensate: payout_handlers:undo_debit
  - id: transfer
    changes: [payment]
    idempotent: yes
    handler: payout_handlers:transfer
    compensation: none
    mitigation: Claw the money back from the supplier
  - id: post_ledger
    changes: [database]
    idempotent: yes
    handler: payout_handlers:post_ledger
    compensation: Reverse the posting
    compensate: payout_handlers:undo_posting
"""

HANDLERS = """\
import json
import os

from sagaguard import StepFailed


def _note(what, ctx):
    with open(os.environ["PAYOUT_LEDGER"], "a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"what": what, "step": ctx.step_id}) + "\\n")


def debit(ctx):
    _note("debit", ctx)
    return {"debit_id": "d-1"}


def undo_debit(ctx):
    _note("undo debit", ctx)


def transfer(ctx):
    _note("transfer", ctx)
    return {"transfer_id": "t-1"}


def post_ledger(ctx):
    _note("post_ledger", ctx)
    raise StepFailed("the ledger refuses the posting", retry=False)


def undo_posting(ctx):
    _note("undo posting", ctx)
"""


def test_a_refusal_after_the_transfer_waits_for_a_person_and_undoes_nothing(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "payout.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    (tmp_path / "payout_handlers.py").write_text(HANDLERS, encoding="utf-8")
    ledger = tmp_path / "ledger.jsonl"
    db = f"sqlite:///{tmp_path}/journal.sqlite3"
    env = os.environ | {"PAYOUT_LEDGER": str(ledger)}
    env.pop("SAGAGUARD_DB", None)

    done = subprocess.run(
        [sys.executable, "-m", "sagaguard", "run", str(spec), "--operation-id", "p-1", "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    calls = [json.loads(line)["what"] for line in ledger.read_text().splitlines()]
    assert calls == ["debit", "transfer", "post_ledger"], "no undo of anything"
    store = open_store(db)
    try:
        snapshot = store.load("p-1")
    finally:
        store.close()
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert snapshot.step("debit").status is StepStatus.COMPLETED
    assert snapshot.step("post_ledger").status is StepStatus.NEEDS_MANUAL_REVIEW
    assert "payments-oncall" in done.stderr, "the alert names its route"
