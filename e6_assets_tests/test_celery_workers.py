"""Runs spread over Celery workers, as deploy/celery/ sets it up: PostgreSQL for the instance, Redis as
the broker, a webserver, a daemon and two workers started with ``deploy/start`` as the README says,
all on 127.0.0.1. A backfill launched through GraphQL (as the UI does) is cut into runs of 25 shards,
which run on both workers at once and write exactly what a single-run build writes."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from celery import Celery

from e6_assets.core.shards import SHARD_KEYS
from e6_assets.definitions import resources
from e6_assets.defs.assets import ALL_ASSETS
from e6_assets.defs.captions.assets import PER_SHARD_CAPTION_ASSETS
from e6_assets_tests.conftest import range_tags
from e6_assets_tests.dagster_dev import free_port, run_backfill, run_tags, stop, wait_until_serving
from e6_assets_tests.services import REPO, InstanceConfig, NewDatabase

SHARDS = SHARD_KEYS[:100]
SHARDS_PER_RUN = 25
WORKERS = ["worker1", "worker2"]
ASSETS = ["raw_captions", "rearranged_captions", "caption_tars"]
TASK_ID_TAG = "dagster-celery/task_id"  # set by dagster-celery's run launcher on every run it sends
STARTUP_TIMEOUT = 180.0
BACKFILL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Deployment:
    url: str
    data_dir: Path
    broker: str
    logs: dict[str, Path]


def _start(role: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(REPO / "deploy" / "start"), *role],
            cwd=log.parent,  # not the repository: Dagster applies a .env of the current folder
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_worker(process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        assert process.poll() is None, f"worker exited with {process.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"worker not ready after {timeout:.0f} s:\n{log.read_text()}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, postgres: NewDatabase, redis_url: str
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("celery")
    config = InstanceConfig("celery", REPO / "deploy" / "celery" / "dagster.yaml", postgres("celery"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("E6_", "DAGSTER_"))},
        **config.env,
        "DAGSTER_HOME": str(config.home(root / "home")),
        "E6_SOURCE": str(sample_dir),
        "E6_DATA_DIR": str(root / "data"),
        "E6_SHARDS_PER_RUN": str(SHARDS_PER_RUN),
        "E6_CELERY_BROKER_URL": redis_url,
        "E6_COMPUTE_LOG_DIR": str(root / "compute-logs"),
        "E6_VENV": sys.prefix,
        "PYTHONWARNINGS": "ignore",
    }
    port = free_port()
    logs = {name: root / f"{name}.log" for name in [*WORKERS, "daemon", "webserver"]}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for worker in WORKERS:
            processes[worker] = _start(["worker", worker], env, logs[worker])
        processes["daemon"] = _start(["daemon"], env, logs["daemon"])
        processes["webserver"] = _start(
            ["webserver", "-h", "127.0.0.1", "-p", str(port)], env, logs["webserver"]
        )
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(processes["webserver"], url, logs["webserver"], STARTUP_TIMEOUT)
        for worker in WORKERS:
            _wait_for_worker(processes[worker], logs[worker], STARTUP_TIMEOUT)
        yield Deployment(url, root / "data", redis_url, logs)
    finally:
        for process in reversed(processes.values()):
            stop(process)


def _worker_of(broker: str, task_id: str) -> str:
    """The Celery worker that ran a task, from the result backend (the workers store it with
    ``result_extended``, as deploy/celery/ configures them)."""
    app = Celery(broker=broker, backend=broker)
    try:
        return app.AsyncResult(task_id).worker
    finally:
        app.close()


def _files(root: Path) -> dict[str, bytes]:
    """Every output file under a data root, by relative path; the staged source (a cache) left out."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).parts[0] != "staged" and not path.name.startswith(".")
    }


def test_backfill_spreads_over_both_workers_and_writes_what_one_run_writes(
    deployment: Deployment, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backfill = run_backfill(deployment.url, ASSETS, SHARDS, BACKFILL_TIMEOUT)

    runs = backfill["runs"]
    logs = "\n".join(f"{name}: {path}" for name, path in deployment.logs.items())
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{backfill}\nlogs:\n{logs}"
    assert all(run["status"] == "SUCCESS" for run in runs), f"{runs}\nlogs:\n{logs}"
    tags = [run_tags(run) for run in runs]
    ranges = sorted(
        (t["dagster/asset_partition_range_start"], t["dagster/asset_partition_range_end"]) for t in tags
    )
    assert ranges == [("0000", "0024"), ("0025", "0049"), ("0050", "0074"), ("0075", "0099")]

    host = socket.gethostname()
    workers = {_worker_of(deployment.broker, t[TASK_ID_TAG]) for t in tags}
    assert workers == {f"{name}@{host}" for name in WORKERS}, logs
    # Both workers were busy at the same time: some two runs overlap.
    spans = sorted((run["startTime"], run["endTime"]) for run in runs)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans

    # The same shards as one run, in this process, into another data root.
    reference = tmp_path / "single-run"
    monkeypatch.setenv("E6_SOURCE", str(sample_dir))
    monkeypatch.setenv("E6_DATA_DIR", str(reference))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            ALL_ASSETS,
            selection=PER_SHARD_CAPTION_ASSETS,
            instance=instance,
            resources=resources(),
            tags=range_tags(SHARDS[0], SHARDS[-1]),
        )
    assert result.success
    built, expected = _files(deployment.data_dir), _files(reference)
    assert sorted(built) == sorted(expected)
    assert len([name for name in built if name.startswith("captions/")]) == 2 * len(SHARDS)
    assert [name for name in built if built[name] != expected[name]] == []
