"""Where command output goes: stdout as UTF-8, or a file written atomically.

A file is written to a temporary name in its own directory, flushed to disk and renamed
over the target, so a crash or a full disk never leaves half a plan behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from sagaguard.exceptions import SagaGuardError

__all__ = ["stdout_is_terminal", "write_atomic", "write_stdout"]


def stdout_is_terminal() -> bool:
    """True when a person is reading stdout (rich tables); False for pipes and files."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def write_stdout(text: str) -> None:
    """Write a document to stdout as UTF-8, whatever the locale, ending with one newline."""
    if not text.endswith("\n"):
        text += "\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
    else:
        # Plans contain arrows and dashes; a latin-1 terminal must not turn them into a crash.
        sys.stdout.flush()
        buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def write_atomic(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` all at once: readers see the old file or the new one.

    With ``overwrite=False`` an existing file is never replaced, even by a concurrent
    writer (the final step is a hard link, which fails when the name is taken).
    Raises :class:`SagaGuardError` with one line naming the path when it cannot be written.
    """
    target = Path(path)
    directory = target.parent
    if target.is_dir():
        raise SagaGuardError(f"{target}: is a directory; give a file name")
    if not directory.is_dir():
        raise SagaGuardError(f"{target}: cannot write, directory {str(directory)!r} does not exist")
    if not overwrite and target.exists():
        raise SagaGuardError(f"{target}: already exists; pass --force to overwrite it")
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise SagaGuardError(f"{target}: cannot write ({exc.strerror or exc})") from None
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _file_mode(target))
        if overwrite:
            os.replace(temp, target)
        else:
            _link_no_clobber(temp, target)
        _fsync_directory(directory)
    except FileExistsError:
        raise SagaGuardError(f"{target}: already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise SagaGuardError(f"{target}: cannot write ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return target


def _link_no_clobber(temp: Path, target: Path) -> None:
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:
        # No hard links on this file system: fall back to check-then-rename.
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.replace(temp, target)


def _file_mode(target: Path) -> int:
    # mkstemp creates 0600; keep an existing file's mode, else the usual umask default.
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry reaches the disk.
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
