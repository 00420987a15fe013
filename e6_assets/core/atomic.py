"""Atomic file writes: an interrupted build never leaves a half-written file at a final path.

A temporary file is named after its target and the process writing it
(``.NAME.XXXXXXXX.PID@HOST.tmp``), so that a later build can tell the leftovers of a killed build
from files a live one is still writing, and remove only the former.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from e6_assets.core.processes import hostname, pid_is_running

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..*\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)\.tmp$")


class WriteError(OSError):
    """An output could not be written (full disk, quota, ...); the file at its path is unchanged."""


def temp_suffix() -> str:
    """The end of the name of every temporary file or folder this process makes."""
    return f".{os.getpid()}@{hostname()}{TEMP_SUFFIX}"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file lives in the same folder so that the final ``os.replace`` is a rename on
    one file system, which readers see either entirely or not at all. When writing fails, the
    error names ``path`` and the file already there is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=temp_suffix(), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        kept = "the previous file is kept" if path.exists() else "nothing was written there"
        failure = WriteError(f"cannot write {path}: {reason}; {kept}")
        failure.errno = error.errno
        raise failure from error
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """``open(path, mode)`` that only becomes visible at ``path`` once the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def stale_temp_files(root: Path) -> list[Path]:
    """Temporary files and folders under ``root`` whose writer no longer runs on this host.

    Leftovers without a writer in their name (from an older version) count as stale; those of
    another host are left to that host."""
    stale = []
    for candidate in root.rglob(f".*{TEMP_SUFFIX}"):
        match = _TEMP_NAME.match(candidate.name)
        if match is None or (match["host"] == hostname() and not pid_is_running(int(match["pid"]))):
            stale.append(candidate)
    return stale


def remove_stale_temp_files(root: Path) -> list[Path]:
    """Remove what :func:`stale_temp_files` finds (a killed build's half-written files)."""
    removed = stale_temp_files(root) if root.is_dir() else []
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed
