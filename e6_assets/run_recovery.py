"""Runs whose process is gone: mark them failed and free the pool slots they hold.

A run that ``e6-assets build`` executes lives in that command's process. When the process is
killed (``kill -9``, the OOM killer, a closed laptop), Dagster never hears of it: the run stays
STARTED, keeps the ``e6_shards`` pool slot its step had claimed, and counts as in progress for the
automation sensor and the fill schedule, for ever. So every run the command creates carries its
process as tags (pid, host, start time), and before it starts new runs the command (and the
``recover_dead_runs`` sensor, in the daemon) marks the runs of this host whose process no longer
runs as failed, with ``DagsterInstance.report_run_failed``, and frees their slots with the event
log storage's ``free_concurrency_slots_for_run``, as Dagster's own monitoring daemon does.

Runs the daemon launches (from the UI, the sensor, the schedules) are watched by Dagster's run
monitoring instead (``run_monitoring`` in ``dagster.yaml``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from e6_assets.core.processes import ProcessId, hostname

PID_TAG = "e6_assets/pid"
HOST_TAG = "e6_assets/host"
STARTED_TAG = "e6_assets/process_started"
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes in-process."""
    process = ProcessId.current()
    tags = {PID_TAG: str(process.pid), HOST_TAG: process.host}
    if process.started:
        tags[STARTED_TAG] = process.started
    return tags


def run_process(run: dg.DagsterRun) -> ProcessId | None:
    """The process a run was executed in, when it was tagged with it."""
    tags = run.tags
    if PID_TAG not in tags or HOST_TAG not in tags or not tags[PID_TAG].isdigit():
        return None
    return ProcessId(int(tags[PID_TAG]), tags[HOST_TAG], tags.get(STARTED_TAG, ""))


def recover_dead_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Mark failed every in-progress run of this host whose process is gone; free stale slots.

    Returns the runs marked failed."""
    dead = []
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: hostname()}))
    for record in records:
        run = record.dagster_run
        process = run_process(run)
        if process is not None and not process.is_running():
            instance.report_run_failed(
                run,
                f"The process that executed this run ({process}) is gone: it was killed or crashed. "
                "Marked as failed by e6-assets, which freed its pool slots.",
            )
            dead.append(run)
    free_slots_of_finished_runs(instance)
    return dead


def free_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots (claimed or queued for) of runs that are finished or deleted."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys()))
    run_ids = storage.get_concurrency_run_ids() | {
        slot.run_id for info in infos.values() for slot in info.claimed_slots
    }
    freed = []
    for run_id in sorted(run_ids):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def pool_holders(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """The runs that hold every slot of ``pool`` or queue for it, or ``[]`` when a step of a new
    run would get a slot at once."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(pool)
    queued = [step.run_id for step in info.pending_steps if step.assigned_timestamp is None]
    claimed = [slot.run_id for slot in info.claimed_slots]
    if info.limit is None or (len(claimed) < info.limit and not queued):
        return []
    return list(dict.fromkeys(claimed + queued))


def describe_run(instance: dg.DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id}"
    process = run_process(run)
    origin = f"e6-assets build, {process}" if process else "launched from the UI or the daemon"
    return f"run {run_id} ({run.job_name}, {origin}, {run.status.value})"


def wait_for_pool(
    instance: dg.DagsterInstance, pool: str, say: Callable[[str], None], poll_seconds: float = 2.0
) -> None:
    """Wait, saying why, while other runs hold ``pool``, recovering dead runs as it goes.

    Dagster 1.13's in-process executor polls for a pool slot without sleeping (a full CPU core for
    as long as it waits), so a build waits here, before it starts a run, instead.
    """
    announced: list[str] = []
    while True:
        recover_dead_runs(instance)
        holders = pool_holders(instance, pool)
        if not holders:
            return
        if holders != announced:
            say(
                f"waiting for pool {pool}, held by "
                + "; ".join(describe_run(instance, run_id) for run_id in holders)
                + ". If that run is no longer running, terminate it in the UI (Runs, the run, Terminate)."
            )
            announced = holders
        time.sleep(poll_seconds)
