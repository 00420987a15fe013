"""Dead runs, stale pool slots and build locks, on a real instance and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core.locks import exclusive
from e6_assets.core.processes import hostname
from e6_assets.defs.automation.sensors import build_recovery_sensor
from e6_assets.run_recovery import (
    HOST_TAG,
    PID_TAG,
    STARTED_TAG,
    process_tags,
    recover_dead_runs,
    wait_for_pool,
)
from e6_assets_tests.cli_process import instance_home

POOL = "e6_shards"


@dg.op
def noop() -> None:
    pass


@dg.job
def some_job() -> None:
    noop()


@pytest.fixture
def instance(tmp_path: Path) -> dg.DagsterInstance:
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path / "home"))) as on_disk:
        yield on_disk


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _run_holding_the_pool(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(some_job, tags=tags)
    status = instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "raw_captions")
    assert status.is_claimed
    return run


def _status(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run.run_id).status


def _claims(instance: dg.DagsterInstance) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def test_a_run_whose_process_is_gone_is_marked_failed_and_its_slot_freed(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    dead = _run_holding_the_pool(instance, {PID_TAG: str(_dead_pid()), HOST_TAG: hostname()})
    assert _claims(instance) == [dead.run_id]

    assert [run.run_id for run in recover_dead_runs(instance)] == [dead.run_id]
    assert _status(instance, dead) == dg.DagsterRunStatus.FAILURE
    assert _claims(instance) == []
    [failure] = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "is gone: it was killed or crashed" in failure.message


def test_runs_of_live_processes_other_hosts_and_the_daemon_are_left_alone(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 3)
    live = _run_holding_the_pool(instance, process_tags())
    remote = _run_holding_the_pool(instance, {PID_TAG: str(_dead_pid()), HOST_TAG: "another-host"})
    from_ui = _run_holding_the_pool(instance, {})
    reused = instance.create_run_for_job(  # the pid lives on, in a process started later
        some_job, tags={**process_tags(), STARTED_TAG: "1"}
    )

    assert [run.run_id for run in recover_dead_runs(instance)] == [reused.run_id]
    assert {_status(instance, run) for run in (live, remote, from_ui)} == {dg.DagsterRunStatus.NOT_STARTED}
    assert sorted(_claims(instance)) == sorted(run.run_id for run in (live, remote, from_ui))


def test_slots_of_finished_runs_are_freed(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    canceled = _run_holding_the_pool(instance, {})
    instance.report_run_canceled(canceled)  # e.g. terminated from the UI
    recover_dead_runs(instance)
    assert _claims(instance) == []


def test_the_sensor_recovers_dead_runs_in_the_daemon(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    dead = _run_holding_the_pool(instance, {PID_TAG: str(_dead_pid()), HOST_TAG: hostname()})
    result = build_recovery_sensor()(dg.build_sensor_context(instance=instance))
    assert result.skip_message == f"marked failed: {dead.run_id}"
    assert _status(instance, dead) == dg.DagsterRunStatus.FAILURE


def test_a_build_waits_while_a_live_run_holds_the_pool_and_goes_on_once_it_ends(instance):
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    from_ui = _run_holding_the_pool(instance, {})
    said: list[str] = []
    waited = threading.Event()
    waiter = threading.Thread(
        target=lambda: (wait_for_pool(instance, POOL, said.append, poll_seconds=0.05), waited.set())
    )
    waiter.start()
    try:
        while not said and waiter.is_alive():
            waited.wait(0.05)
        assert said == [
            f"waiting for pool {POOL}, held by run {from_ui.run_id} (some_job, launched from the UI or the "
            "daemon, NOT_STARTED). If that run is no longer running, terminate it in the UI (Runs, the "
            "run, Terminate)."
        ]
        assert not waited.is_set()
    finally:
        instance.report_run_canceled(from_ui)
        waiter.join(timeout=60)
    assert waited.is_set()


_HOLDER = """
import os, sys, time
from e6_assets.core.locks import exclusive
with exclusive(__import__("pathlib").Path(sys.argv[1]), "the data root", print):
    if os.fork() == 0:  # a worker that outlives its parent
        time.sleep(120)
        os._exit(0)
    print("locked", flush=True)
    time.sleep(120)
"""


def test_the_build_lock_dies_with_its_holder_even_when_its_workers_live_on(tmp_path):
    lock = tmp_path / ".e6-assets.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        said: list[str] = []
        with pytest.raises(OSError):  # held: a second build would wait
            _try_lock(lock)
        holder.kill()  # the holder alone; its forked worker still runs
        holder.wait()
        assert len(_group_members(holder.pid)) == 1
        with exclusive(lock, "the data root", said.append):
            assert said == []
        assert lock.read_text().startswith(f"pid {os.getpid()} on {hostname()}, since ")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.stdout.close()


def _try_lock(path: Path) -> None:
    """Take and release the lock from another process (POSIX locks never block their own process)."""
    code = "import fcntl,os,sys; fcntl.lockf(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB)"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if result.returncode:
        raise OSError(result.stderr.strip().splitlines()[-1])


def _group_members(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group:
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members
