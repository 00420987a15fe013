"""Which process wrote something, and whether that process is still running.

A process is named by its pid, its host and (on Linux) its start time, so that a pid reused by a
later process after a crash is not taken for the one that crashed.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path


@functools.cache
def hostname() -> str:
    """This machine's name, restricted to the characters a file name and a run tag can hold."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in clock ticks since boot)`` from Linux's ``/proc``, else ``None``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return fields[0], fields[19]


@dataclass(frozen=True)
class ProcessId:
    pid: int
    host: str
    started: str = ""  # empty where the platform does not tell

    @classmethod
    def current(cls) -> ProcessId:
        stat = _proc_stat(os.getpid())
        return cls(os.getpid(), hostname(), stat[1] if stat else "")

    def is_local(self) -> bool:
        return self.host == hostname()

    def is_running(self) -> bool:
        """Whether the process still runs; only answerable for a process of this host (else True)."""
        if not self.is_local():
            return True
        return pid_is_running(self.pid, self.started)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def pid_is_running(pid: int, started: str = "") -> bool:
    """Whether ``pid`` on this host is a live process (not a zombie) that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the pid exists, which is all this platform tells
    state, start = stat
    return state not in ("Z", "X") and (not started or start == started)
