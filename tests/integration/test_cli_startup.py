"""What a command loads: each imports only what it uses, so a short command starts fast.

The speed itself is measured by ``bench/startup.py`` (wall time beside ``python -c pass``),
never by a timed test. These tests pin the cause instead: which heavy libraries and which of
sagaguard's own layers a real process has imported once the command finished.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_CHILD = textwrap.dedent(
    """
    import io, json, sys
    from contextlib import redirect_stdout
    from sagaguard.cli import main
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main(sys.argv[1:])
        except SystemExit as exc:
            code = exc.code
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
    """
)

HEAVY = ("pydantic", "rich", "jinja2", "yaml", "sqlite3")
ENGINE = ("sagaguard.engine.executor", "sagaguard.storage.sqlite", "sagaguard.planner.build")


def loaded_by(*args: str) -> tuple[int, set[str]]:
    """The exit code of ``sagaguard ARGS`` in a fresh interpreter and the modules it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def _top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_no_model_no_engine_no_rich(args: list[str]) -> None:
    code, modules = loaded_by(*args)
    assert code == 0
    assert not _top(modules) & set(HEAVY), sorted(_top(modules) & set(HEAVY))
    assert not modules & set(ENGINE), sorted(modules & set(ENGINE))


@pytest.mark.parametrize("command", ["plan", "run", "worker", "runs", "review"])
def test_a_command_s_help_loads_neither_the_model_nor_the_engine(command: str) -> None:
    """typer itself may load pydantic to read the options; sagaguard's layers stay unloaded."""
    code, modules = loaded_by(command, "--help")
    assert code == 0
    assert not modules & {"sagaguard.model", *ENGINE}, sorted(
        modules & {"sagaguard.model", *ENGINE}
    )
    assert not _top(modules) & {"rich", "jinja2", "yaml"}


def test_plan_loads_the_planner_but_not_the_engine_the_journal_or_html() -> None:
    code, modules = loaded_by("plan", str(EXAMPLES / "checkout.yaml"))
    assert code == 0
    assert "sagaguard.planner.build" in modules
    assert not modules & {"sagaguard.engine.executor", "sagaguard.storage.sqlite", "sqlite3"}
    assert not _top(modules) & {"jinja2", "rich"}, "a Markdown plan needs no template or table"


def test_runs_list_loads_the_journal_but_not_the_planner(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    code, _ = loaded_by("demo", "--db", str(journal))
    assert code == 0
    code, modules = loaded_by("runs", "list", "--db", f"sqlite:///{journal}")
    assert code == 0
    assert "sagaguard.storage.sqlite" in modules
    assert not modules & {"sagaguard.planner.build", "sagaguard.engine.executor"}
    assert "jinja2" not in _top(modules)


def test_the_startup_benchmark_runs_every_command_and_prints_its_median(tmp_path: Path) -> None:
    """``bench/startup.py --rounds 1`` runs end to end; its figures are not judged here."""
    out = tmp_path / "startup.jsonl"
    script = Path(__file__).resolve().parents[2] / "bench" / "startup.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = out.read_text().splitlines()
    medians = json.loads(line)["median_ms"]
    assert set(medians) == {
        "python -c pass",
        "sagaguard --version",
        "sagaguard --help",
        "sagaguard plan (20 steps)",
        "sagaguard check (20 steps)",
        "sagaguard demo",
    }
    for label in medians:
        assert label in done.stdout
