"""One build at a time per data root and per Dagster instance.

``e6-assets build`` holds a POSIX record lock (``fcntl.lockf``) on a lock file in the data root and
another in the instance's home for as long as it runs. Such a lock belongs to the process that took
it: the kernel releases it when that process dies, however it dies, and processes it forks (a pool
of workers) do not inherit it, so workers left behind by a killed build do not keep the next one
waiting. A second build waits on the lock in the kernel (no CPU used), after saying what it waits for.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from e6_assets.core.processes import ProcessId

DATA_LOCK = ".e6-assets.lock"  # in the data root
INSTANCE_LOCK = "e6-assets-build.lock"  # in DAGSTER_HOME


@contextlib.contextmanager
def exclusive(path: Path, what: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock ``path`` for the block; if another process holds it, say so and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            say(f"another e6-assets build ({holder}) is using {what}; waiting for it to finish")
            fcntl.lockf(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{ProcessId.current()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def build_locks(instance_home: Path, data_root: Path, say: Callable[[str], None]) -> Iterator[None]:
    """The instance's lock, then the data root's: always in this order, so two builds never wait
    for each other in a circle."""
    with (
        exclusive(instance_home / INSTANCE_LOCK, f"the Dagster instance {instance_home}", say),
        exclusive(data_root / DATA_LOCK, f"the data root {data_root}", say),
    ):
        yield
