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


def _wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dagster dev exited with {process.returncode}; log:\n{log.read_text()[-4000:]}"
            )
        if _get(f"{url}/server_info") is not None:
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"dagster dev did not serve {url} within {timeout:.0f}s; log:\n{log.read_text()[-4000:]}"
    )


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Ask ``dagster dev`` to shut down, then end whatever is left of its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the webserver, daemon, code servers, runs
    process.wait(timeout=30)


@contextmanager
def dagster_dev(workdir: Path, source: Path, startup_timeout: float = 120.0) -> Iterator[UiServer]:
    """``dagster dev`` on 127.0.0.1 with DAGSTER_HOME, E6_SOURCE and E6_DATA_DIR under ``workdir``.

    It runs in ``workdir``, not the repository: Dagster would apply a ``.env`` found in the current
    folder over the environment given here.
    """
    home, data_dir = workdir / "dagster_home", workdir / "data"
    home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "E6_SOURCE": str(source),
        "E6_DATA_DIR": str(data_dir),
        "PYTHONWARNINGS": "ignore",
    }
    log = workdir / "dagster-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                *["-h", "127.0.0.1"],
                *["-p", str(port)],
            ],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(process, url, log, startup_timeout)
        graphql(url, "mutation { setNuxSeen }")  # the one-time newsletter prompt would cover the page
        yield UiServer(url=url, home=home, data_dir=data_dir, log=log)
    finally:
        _stop(process)
