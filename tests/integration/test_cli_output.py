"""Where output goes: ``-o`` replaces only a regular file, and a failed write is never a success.

The atomic rename that protects a plan from a crash would also replace whatever the name
points at: a FIFO, a device node, the symbolic link itself. Each kind is tried here (devices
only through a link, so a regression can never touch a real device node), and stdout on a
full device (``/dev/full``) must fail the command with one line.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli import assert_one_line_error, invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = EXAMPLES / "checkout.yaml"


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "plans" / "plan.md"
    real.parent.mkdir()
    real.write_text("old plan\n", encoding="utf-8")
    link = tmp_path / "current.md"
    link.symlink_to(real)

    result = invoke("plan", str(SPEC), "-o", str(link))

    assert result.exit_code == 0, result.stderr
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text(encoding="utf-8").startswith("# Recovery plan: checkout")
    assert sorted(p.name for p in real.parent.iterdir()) == ["plan.md"], "temp file left"


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "plan.json"
    link.symlink_to(tmp_path / "real.json")
    result = invoke("plan", str(SPEC), "-o", str(link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink()
    assert (tmp_path / "real.json").read_text(encoding="utf-8").startswith("{")


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.md"
    os.mkfifo(path)
    return path


def _socket(tmp_path: Path) -> Path:
    path = tmp_path / "sock.md"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


def _link_to_dev_null(tmp_path: Path) -> Path:
    link = tmp_path / "null.md"
    link.symlink_to("/dev/null")
    return link


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "dir.md"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_fifo, "a named pipe (FIFO)"),
        (_socket, "a socket"),
        (_link_to_dev_null, "a character device"),
        (_directory, "a directory"),
    ],
    ids=["fifo", "socket", "link_to_device", "directory"],
)
def test_what_is_not_a_regular_file_is_refused_and_left_as_it_was(
    tmp_path: Path, make: object, kind: str
) -> None:
    assert callable(make)
    path: Path = make(tmp_path)
    before = path.lstat()
    line = assert_one_line_error(invoke("plan", str(SPEC), "-o", str(path)), str(path), kind)
    assert "not a regular file" in line or kind == "a directory"
    after = path.lstat()
    assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (
        before.st_ino,
        stat.S_IFMT(before.st_mode),
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_init_refuses_a_fifo_too(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    assert_one_line_error(invoke("init", str(fifo), "--force"), str(fifo), "named pipe")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("name", ["plan.pdf", "plan", "plan.md.bak"])
def test_an_unknown_suffix_is_refused_without_format(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    assert_one_line_error(invoke("plan", str(SPEC), "-o", str(target)), name, "--format")
    assert not target.exists()


def test_an_unknown_suffix_is_fine_with_an_explicit_format(tmp_path: Path) -> None:
    target = tmp_path / "plan.txt"
    result = invoke("plan", str(SPEC), "--format", "markdown", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_text(encoding="utf-8").startswith("# Recovery plan")


def test_a_read_only_file_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename could replace it (the folder is writable); ``>`` would have refused."""
    target = tmp_path / "plan.md"
    target.write_text("signed-off plan\n", encoding="utf-8")
    target.chmod(0o444)
    if os.access(target, os.W_OK):
        # Root may write anything (CI runs as root): answer as the OS does for anyone else.
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode: (
                (mode != os.W_OK or Path(path) != target) and real_access(path, mode)
            ),
        )
    assert_one_line_error(invoke("plan", str(SPEC), "-o", str(target)), "read-only")
    assert target.read_text(encoding="utf-8") == "signed-off plan\n"


# --- stdout that cannot be written ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args",
    [
        ["plan", str(SPEC)],
        ["plan", str(SPEC), "--format", "json"],
        ["check", str(SPEC)],
        ["init", "-"],
        ["--version"],
        ["--help"],
        ["runs", "--help"],
        ["runs"],
    ],
    ids=["plan", "plan_json", "check", "init", "version", "help", "group_help", "no_subcommand"],
)
def test_stdout_on_a_full_device_fails_with_one_line(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "sagaguard", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "sagaguard: error: stdout: cannot write (No space left on device)"
    ]


# --- no subcommand: the help is the answer -------------------------------------------------


@pytest.mark.parametrize("args", [[], ["runs"], ["review"]], ids=["root", "runs", "review"])
def test_no_subcommand_prints_help_on_stdout_exits_2_and_says_nothing_on_stderr(
    args: list[str],
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr == ""
    assert result.stdout.startswith(f"Usage: sagaguard {' '.join(args)}".rstrip() + " [OPTIONS]")
    assert "Commands:" in result.stdout
