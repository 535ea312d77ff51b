"""What the command-line tests share: invoking ``sagaguard`` in-process and the one-line rule."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from sagaguard.cli import app


def invoke(*args: str, input: str | None = None) -> Result:
    """``sagaguard ARGS`` through typer's runner (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, list(args), input=input)


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit 2, no traceback, exactly one ``sagaguard: error:`` line holding every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.stdout[:500], result.stderr[:500])
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[:2000]
    line = lines[0]
    assert line.startswith("sagaguard: error: "), line[:500]
    for fragment in fragments:
        assert fragment in line, (fragment, line[:500])
    return line
