"""``e6-assets build`` as a real process: started, watched through the files it writes, killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from e6_assets.core.layout import DataLayout

REPO = Path(__file__).resolve().parents[1]
HANG_GUARD_SECONDS = 600  # a build that runs longer than this is hung (not a speed limit)


def instance_home(folder: Path) -> Path:
    """A Dagster home with the repository's dagster.yaml (pools, run monitoring)."""
    folder.mkdir(parents=True, exist_ok=True)
    # The event log's folder spelled out, as DAGSTER_HOME is not set where a test opens the instance.
    settings = (REPO / "dagster.yaml").read_text()
    storage = "  class: PooledSqliteEventLogStorage\n"
    assert storage in settings
    runs = folder / "history" / "runs"
    settings = settings.replace(storage, f"{storage}  config:\n    base_dir: {json.dumps(str(runs))}\n")
    (folder / "dagster.yaml").write_text(settings)
    return folder


def cli_env(home: Path, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("E6_", "DAGSTER_HOME"))}
    return {**environment, "DAGSTER_HOME": str(home), **env}


def start_build(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``e6-assets build ARGS`` in a session of its own (so that a kill reaches its whole
    group), with stdout and stderr in ``log``.out / ``log``.err."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "e6_assets.cli", "build", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def wait_until(process: subprocess.Popen, condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` every 10 ms while ``process`` runs; whether it became true first."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def kill_group(process: subprocess.Popen) -> int:
    """SIGKILL the build and every process of its session; reap it; return its exit status."""
    os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def finish(process: subprocess.Popen) -> int:
    return process.wait(timeout=HANG_GUARD_SECONDS)


def output_files(root: Path) -> dict[str, bytes]:
    """Every output under a data root by relative path, without lock and temporary files."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def reference_files(reference: DataLayout, keys: list[str], merged: bool = False) -> dict[str, bytes]:
    """What a build of ``keys`` (and the merged files) writes, from the reference build."""
    paths = [reference.staged_dir / path.name for path in reference.staged_dir.iterdir()]
    for key in keys:
        paths += [reference.raw(key), reference.rearranged(key), reference.tar(key)]
        paths += [reference.tar_index(key), reference.meta_cap_fragment(key)]
    if merged:
        paths += [reference.meta_cap_json, reference.meta_cap_tar_gz]
    return {str(path.relative_to(reference.root)): path.read_bytes() for path in paths}
