"""Spreading a step's independent pieces of work (shards, source files, id bands) over processes.

The data work is CPU-bound Arrow and Python code, so threads would share one core; each step runs its
pieces in a pool of worker processes instead. The workers come from a fork server that has imported
only the data modules (never Dagster, never an open database connection: the parent's threads and
SQLite handles are not copied into them), so starting them costs a fork, not a fresh interpreter.
Results come back in the order of the work, so what a step records and writes does not depend on the
number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# What the fork server imports once, so that each worker starts with the data modules loaded.
_PRELOAD = ["e6_assets.core.pipeline", "e6_assets.core.merge"]


def worker_count(setting: int | None = None) -> int:
    """Processes per step: ``setting`` if positive, else ``E6_WORKERS``, else every core."""
    if setting and setting > 0:
        return setting
    text = os.environ.get("E6_WORKERS", "").strip()
    if text:
        if not text.isdigit():
            raise ValueError(f"E6_WORKERS must be a whole number of processes (0: every core), got {text!r}")
        if int(text) > 0:
            return int(text)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def map_in_processes(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int
) -> Iterator[Result]:
    """``map(function, items)`` over ``workers`` processes, lazily, in the order of ``items``.

    With one worker or one item the work runs in this process: a one-shard rebuild starts no pool.
    ``function`` must be importable at module level (it is sent to the workers by name).
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=_context()) as pool:
        # At most 2 pieces queued per worker: results are consumed in order while the rest run, and
        # a failure stops the step without first running everything queued behind it.
        pending: list = []
        queue = iter(items)
        for item in queue:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.pop(0).result()
            for item in queue:
                pending.append(pool.submit(function, item))
                break
            yield result
