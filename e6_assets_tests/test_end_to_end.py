"""End to end with real processes: `dagster dev` (webserver, daemon, code server) on 127.0.0.1 with a
temporary DAGSTER_HOME and the project's dagster.yaml; a backfill of a few shards is launched through
the GraphQL API, as the UI does, and the test waits for its runs and files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARDS = ["0000", "0001", "0002"]
PER_SHARD_ASSETS = ["raw_captions", "rearranged_captions", "caption_tars", "meta_cap_fragments"]
STARTUP_TIMEOUT = 180.0
BACKFILL_TIMEOUT = 300.0

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 50) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


def stop(process: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children left behind, if any
    process.wait(timeout=30)


@pytest.fixture
def dagster_dev(tmp_path: Path, sample_dir: Path) -> Iterator[tuple[int, Path]]:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    # The code location's working directory is tmp_path: Dagster reads a `.env` there (none), not
    # the project's, whose values would replace the environment given below.
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: e6_assets.definitions\n"
        f"      working_directory: {tmp_path}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "E6_SOURCE": str(sample_dir),
        "E6_DATA_DIR": str(data),
    }
    dagster = Path(sys.executable).with_name("dagster")
    log = (tmp_path / "dagster-dev.log").open("wb")
    process = subprocess.Popen(
        [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"dagster dev exited; see {log.name}"
            try:
                data_ = graphql(port, "{ version }", {})
                if data_.get("version"):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, f"dagster dev did not answer in {STARTUP_TIMEOUT:.0f} s"
            time.sleep(1)
        yield port, data
    finally:
        stop(process)
        log.close()


def test_backfill_launched_through_graphql_runs_and_writes_the_shards(
    dagster_dev: tuple[int, Path],
) -> None:
    port, data = dagster_dev
    params = {
        "assetSelection": [{"path": [name]} for name in PER_SHARD_ASSETS],
        "partitionNames": SHARDS,
        "fromFailure": False,
        "title": "end-to-end test",
    }
    launched = graphql(port, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while True:
        backfill = graphql(port, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, (
            f"backfill still {backfill['status']} after {BACKFILL_TIMEOUT:.0f} s"
        )
        time.sleep(2)

    runs = backfill["runs"]
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert runs and all(run["status"] == "SUCCESS" for run in runs), runs
    # The single-run backfill policy: the three shards of all four assets are one ranged run.
    assert len(runs) == 1, runs
    ranges = {
        (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end"))
        for tags in ({t["key"]: t["value"] for t in run["tags"]} for run in runs)
    }
    assert ranges == {(SHARDS[0], SHARDS[-1])}
    for shard in SHARDS:
        assert (data / "captions" / f"{shard}.tar").is_file()
        assert (data / "captions" / f"{shard}.json").is_file()
        assert (data / "meta_cap" / f"{shard}.parquet").is_file()
    assert not (data / "captions" / "0003.tar").exists()
