"""``sagaguard demo``: the guide's checkout incident, played on a local SQLite journal.

Two scenarios (:mod:`sagaguard.demo.scenarios`): a charge whose answer is lost, settled by
verify without a second charge; a delivery that cannot be booked, rolled back in reverse
order. What is printed, and when, is :mod:`sagaguard.cli.demo_screen`. Each scenario ends
with the provider ledger and the claims it checks; a claim that does not hold is a bug and
fails the command (exit 1).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from sagaguard.cli.app import app
from sagaguard.cli.errors import EXIT_FINDINGS, report_error
from sagaguard.cli.runs import make_console, sqlite_path
from sagaguard.exceptions import SagaGuardError
from sagaguard.storage import open_store

__all__ = ["demo"]


@app.command()
def demo(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="SQLite file (a path or sqlite:///path) to play the demo in, kept afterwards. "
            "Default: a fresh temporary file.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary journal to inspect it afterwards.")
    ] = False,
) -> None:
    """Play the guide's incident: a lost payment answer verified, a failed delivery rolled back.

    Prints every journal event as it is committed, with what it means, then each
    provider's ledger: one charge in the first scenario; one charge, one refund, one
    reservation and one release in the second.
    """
    from sagaguard.cli.demo_screen import play_all, show_epilogue

    console = make_console()
    temp_dir = None
    if db is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="sagaguard-demo-"))
        path = temp_dir / "demo.sqlite3"
    else:
        path = _demo_path(db)
    url = f"sqlite:///{path.resolve()}"
    try:
        store = open_store(url)
        try:
            played = play_all(console, store, path)
        finally:
            store.close()
    finally:
        if temp_dir is not None and not keep:
            shutil.rmtree(temp_dir, ignore_errors=True)
    kept = temp_dir is None or keep
    show_epilogue(console, played, url if kept else None)
    failed = [check.claim for p in played for check in p.checks if not check.holds]
    if failed:
        report_error(f"demo claim does not hold: {failed[0]}")
        raise typer.Exit(EXIT_FINDINGS)


def _demo_path(db: str) -> Path:
    """The demo's SQLite file from ``--db``: a path, or a ``sqlite:///`` URL naming one."""
    if "://" in db:
        path = sqlite_path(db) if db.lower().startswith("sqlite:") else None
        if path is None:
            raise SagaGuardError(
                f"--db {db!r}: the demo plays on SQLite; give a file path or sqlite:///PATH"
            )
    else:
        path = Path(db)
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name the system cannot even look up (too long)
        raise SagaGuardError(f"--db {db!r}: cannot be used ({exc.strerror or exc})") from None
    if is_dir:
        raise SagaGuardError(f"--db {db!r}: is a directory; give a file path")
    return path
