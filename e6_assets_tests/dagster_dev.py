"""Start ``dagster dev`` (webserver + daemon) on a throwaway instance for end-to-end tests, and stop it."""

from __future__ import annotations

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
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class UiServer:
    url: str
    home: Path
    data_dir: Path
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args} exited with {process.returncode}; log:\n{log.read_text()[-4000:]}"
            )
        if _get(f"{url}/server_info") is not None:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{url} was not served within {timeout:.0f}s; log:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Ask a process started in its own session (``dagster dev``, a webserver, a daemon, a worker) to
    shut down, then end whatever is left of its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the webserver, daemon, code servers, runs
    process.wait(timeout=30)


@contextmanager
def _serving(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, startup_timeout: float
) -> Iterator[str]:
    """Run a ``dagster dev``-like command (with ``-h``/``-p`` appended) in its own session until the
    block ends; yields its URL once it serves."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *["-h", "127.0.0.1"], *["-p", str(port)]],
            cwd=cwd,
            env={**env, "PYTHONWARNINGS": "ignore"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(process, url, log, startup_timeout)
        graphql(url, "mutation { setNuxSeen }")  # the one-time newsletter prompt would cover the page
        yield url
    finally:
        stop(process)


@contextmanager
def dagster_dev(
    workdir: Path,
    source: Path,
    startup_timeout: float = 120.0,
    dagster_yaml: Path = REPO / "dagster.yaml",
    extra_env: dict[str, str] | None = None,
) -> Iterator[UiServer]:
    """``dagster dev`` on 127.0.0.1 with DAGSTER_HOME, E6_SOURCE and E6_DATA_DIR under ``workdir``,
    the instance configured by ``dagster_yaml`` (and the variables it reads, in ``extra_env``).

    It runs in ``workdir``, not the repository: Dagster would apply a ``.env`` found in the current
    folder over the environment given here.
    """
    home, data_dir = workdir / "dagster_home", workdir / "data"
    home.mkdir(parents=True)
    shutil.copyfile(dagster_yaml, home / "dagster.yaml")
    env = {
        **os.environ,
        **(extra_env or {}),
        "DAGSTER_HOME": str(home),
        "E6_SOURCE": str(source),
        "E6_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml")]
    log = workdir / "dagster-dev.log"
    with _serving(command, workdir, env, log, startup_timeout) as url:
        yield UiServer(url=url, home=home, data_dir=data_dir, log=log)


PROJECT_FILES = ["pyproject.toml", "workspace.yaml", "dagster.yaml", "e6_assets"]


def project_copy(folder: Path) -> Path:
    """The project's files as a fresh clone has them (no data, no instance, no ``.env``), in ``folder``."""
    folder.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(REPO / name, folder / name)
    return folder


@contextmanager
def dg_dev(
    project: Path, env: dict[str, str], log: Path, startup_timeout: float = 120.0
) -> Iterator[UiServer]:
    """``dg dev`` in the root of ``project`` (see ``project_copy``), as the README runs it, with
    exactly the environment ``env``: the settings are whatever the code location makes of it."""
    dg = Path(sys.executable).with_name("dg")
    with _serving([str(dg), "dev"], project, env, log, startup_timeout) as url:
        yield UiServer(url=url, home=Path(env["DAGSTER_HOME"]), data_dir=project / "data", log=log)


LAUNCH_BACKFILL = """
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
    ... on PartitionBackfill {
      status
      runs(limit: 100) { runId status startTime endTime tags { key value } }
    }
    ... on PythonError { message }
  }
}
"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def graphql_data(url: str, query: str, variables: dict) -> dict:
    body = graphql(url, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def run_backfill(url: str, assets: list[str], partitions: list[str], timeout: float) -> dict:
    """Launch a backfill of ``assets`` over ``partitions`` as the UI does (Materialize, a partition
    selection, Launch) and wait until it is done; returns the backfill with its runs."""
    params = {
        "assetSelection": [{"path": [name]} for name in assets],
        "partitionNames": partitions,
        "fromFailure": False,
        "title": "test backfill",
    }
    launched = graphql_data(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + timeout
    while True:
        backfill = graphql_data(url, BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in BACKFILL_DONE:
            return backfill
        assert time.monotonic() < deadline, f"backfill still {backfill['status']} after {timeout:.0f} s"
        time.sleep(2)


def run_tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def location_name(url: str) -> str:
    """The name of the one code location the server loaded."""
    entries = graphql_data(url, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }", {})
    [entry] = entries["workspaceOrError"]["locationEntries"]
    return entry["name"]


LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_job(url: str, job: str) -> str:
    """Launch a job as its Launchpad does, with no run config; returns the run id."""
    params = {
        "selector": {
            "repositoryLocationName": location_name(url),
            "repositoryName": "__repository__",
            "jobName": job,
        },
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": []},
    }
    launched = graphql_data(url, LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState { ticks(limit: 20) { status timestamp endTimestamp requestedAssetMaterializationCount } }
    }
  }
}
"""


def _sensor_selector(url: str, sensor: str) -> dict[str, str]:
    return {
        "repositoryLocationName": location_name(url),
        "repositoryName": "__repository__",
        "sensorName": sensor,
    }


def start_sensor(url: str, sensor: str) -> None:
    """Turn a sensor on, as its toggle in the UI does."""
    started = graphql_data(url, START_SENSOR, {"selector": _sensor_selector(url, sensor)})["startSensor"]
    assert started["__typename"] == "Sensor", started


def sensor_ticks(url: str, sensor: str) -> list[dict]:
    """The sensor's latest ticks, newest first."""
    found = graphql_data(url, SENSOR_TICKS, {"selector": _sensor_selector(url, sensor)})["sensorOrError"]
    assert found["__typename"] == "Sensor", found
    return found["sensorState"]["ticks"]
