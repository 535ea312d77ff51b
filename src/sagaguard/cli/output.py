"""Where command output goes: stdout as UTF-8, or a file written atomically.

A file is written to a temporary name in its own directory, flushed to disk and renamed
over the target, so a crash or a full disk never leaves half a plan behind. Only a regular
file is ever replaced: a symbolic link is written through (its target is replaced, the link
stays), and a device, a FIFO, a socket or a directory is refused, so ``-o /dev/null`` can
never replace the device node. A write to stdout that fails (``> /dev/full``) is an
:class:`OutputError` (exit 2, one line), never a silent success.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from sagaguard.exceptions import SagaGuardError
from sagaguard.textfile import kind_of

__all__ = [
    "OutputError",
    "flush_stdout",
    "format_for",
    "raised_writing",
    "silence_stdout",
    "stdout_is_terminal",
    "write_atomic",
    "write_document",
    "write_stdout",
]


class OutputError(SagaGuardError):
    """The command's output could not be written (a full disk, a device error)."""


Format = TypeVar("Format", bound=StrEnum)


def format_for(
    output: Path | None, suffixes: Mapping[str, Format], *, default: Format, noun: str
) -> Format:
    """The format ``-o FILE`` asks for by its suffix; ``default`` for stdout (``-o -``).

    A suffix of no format is an error naming the suffixes and ``--format``: ``-o plan.pdf``
    must not quietly write Markdown into a file named .pdf.
    """
    target = _file_of(output)
    if target is None:
        return default
    fmt = suffixes.get(target.suffix.lower())
    if fmt is None:
        what = f"suffix {target.suffix!r}" if target.suffix else "no suffix"
        raise SagaGuardError(
            f"-o {output}: {what} says no {noun} format; name it {', '.join(suffixes)}, "
            f"or give --format {'|'.join(type(default))}"
        )
    return fmt


def stdout_is_terminal() -> bool:
    """True when a person is reading stdout (rich tables); False for pipes and files."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def write_stdout(text: str) -> None:
    """Write a document to stdout as UTF-8, whatever the locale, ending with one newline.

    Raises :class:`OutputError` when stdout refuses it (a closed pipe stays a
    ``BrokenPipeError``: the reader left on purpose, as ``| head`` does).
    """
    if not text.endswith("\n"):
        text += "\n"
    with _reported("stdout"):
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(text)
        else:
            # Plans contain arrows and dashes; a latin-1 terminal must not turn them into a crash.
            sys.stdout.flush()
            buffer.write(text.encode("utf-8"))
        sys.stdout.flush()


def flush_stdout() -> None:
    """Flush stdout; :class:`OutputError` when what was buffered cannot be written."""
    with _reported("stdout"):
        sys.stdout.flush()


# Where click and rich write to stdout: an OSError raised there is the output failing.
_WRITERS = frozenset({"typer._click.utils", "click.utils", "rich.console", __name__})


def raised_writing(exc: OSError) -> bool:
    """True when ``exc`` came out of a write to stdout (help, a table, the version).

    A failed write drops its text, so nothing in the stream tells afterwards; the frame the
    error left from does: the deepest one is click's ``echo`` or rich's console.
    """
    trace = exc.__traceback__
    module = None
    while trace is not None:
        module = trace.tb_frame.f_globals.get("__name__")
        trace = trace.tb_next
    return module in _WRITERS


@contextlib.contextmanager
def _reported(where: str) -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"{where}: cannot write ({exc.strerror or exc})") from None


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail a second time.

    For when stdout already failed: a reader that went away (``| head``), a full device.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def write_document(output: Path | None, text: str) -> Path | None:
    """Write a command's document to ``-o FILE`` atomically, or to stdout (no ``-o``, ``-o -``).

    Returns the file written, for the command's note on stderr; ``None`` for stdout.
    """
    target = _file_of(output)
    if target is None:
        write_stdout(text)
        return None
    return write_atomic(target, text if text.endswith("\n") else text + "\n")


def _file_of(output: Path | None) -> Path | None:
    """The file ``-o`` names; ``None`` for stdout (no ``-o``, or ``-o -``)."""
    return None if output is None or str(output) == "-" else output


def write_atomic(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` all at once: readers see the old file or the new one.

    With ``overwrite=False`` an existing file is never replaced, even by a concurrent
    writer (the final step is a hard link, which fails when the name is taken).
    Raises :class:`SagaGuardError` with one line naming the path when it cannot be written.
    """
    named = Path(path)
    target = _replaceable(named)
    directory = target.parent
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
    return named


def _replaceable(named: Path) -> Path:
    """The file a write to ``named`` replaces: ``named``, or the final target of a link.

    Refuses whatever is not a regular file (or not there yet): the rename would replace a
    device node or a FIFO with a plain file, and a link with a file of its own.
    """
    target = named
    try:
        if named.is_symlink():
            target = Path(os.path.realpath(named))
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise SagaGuardError(f"{named}: cannot write ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode):
        if not os.access(target, os.W_OK):
            raise SagaGuardError(f"{named}: is read-only; not replacing it")
        return target
    via = f" (a link to {target})" if target != named else ""
    raise SagaGuardError(f"{named}{via}: is {kind_of(mode)}, not a regular file; give a file name")


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
