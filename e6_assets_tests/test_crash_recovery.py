"""``kill -9`` of a real ``e6-assets build`` at several points, then a build again.

The kill points are found by watching the data root for the files the build writes. After every
kill, each file at a final path is byte-identical to an uninterrupted build's (none is half
written); the next build recovers (the dead run failed, its pool slot freed, its temporary files
removed), completes and writes the same bytes as an uninterrupted build.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import dagster as dg

from e6_assets.core.layout import DataLayout
from e6_assets.run_recovery import IN_PROGRESS, PID_TAG
from e6_assets_tests.cli_process import (
    cli_env,
    finish,
    instance_home,
    kill_group,
    output_files,
    reference_files,
    start_build,
    temp_files,
    wait_until,
)

SHARDS = [f"{i:04d}" for i in range(20)]


def _has_files(folder: Path, suffix: str = "", at_least: int = 1) -> bool:
    return folder.is_dir() and sum(1 for path in folder.iterdir() if path.name.endswith(suffix)) >= at_least


def _assert_finals_are_whole(root: Path, reference: DataLayout) -> None:
    """Whatever a killed build left at final paths is exactly what an uninterrupted build writes."""
    for name, data in output_files(root).items():
        assert data == (reference.root / name).read_bytes(), name


def test_killed_while_staging_writing_raw_and_writing_tars_then_rebuilt_gives_the_same_bytes(
    tmp_path, sample_dir, full_build
):
    home, data = instance_home(tmp_path / "home"), tmp_path / "data"
    layout = DataLayout(data)
    args = ["--source", str(sample_dir), "--data-dir", str(data), "--shards", "0000...0019", "--no-merge"]
    env = cli_env(home)
    kill_points = {
        "staging": lambda: _has_files(layout.staged_dir),
        "raw": lambda: _has_files(layout.raw("0000").parent, ".parquet"),
        "tars": lambda: _has_files(layout.tar("0000").parent, ".tar", at_least=5),
    }
    killed_pids = []
    for point, reached in kill_points.items():
        build = start_build(args, tmp_path, env, tmp_path / f"killed-{point}")
        assert wait_until(build, reached), f"the build ended before {point}"
        assert kill_group(build) == -signal.SIGKILL
        killed_pids.append(str(build.pid))
        _assert_finals_are_whole(data, full_build)

    with dg.DagsterInstance.from_config(str(home)) as instance:  # what the issue saw
        [stuck] = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS))
        assert stuck.dagster_run.tags[PID_TAG] == killed_pids[-1]
        claims = instance.event_log_storage.get_concurrency_info("e6_shards").claimed_slots
        assert [claim.run_id for claim in claims] == [stuck.dagster_run.run_id]

    build = start_build(args, tmp_path, env, tmp_path / "rebuild")
    assert finish(build) == 0, (tmp_path / "rebuild.err").read_text()[-3000:]
    run_id = stuck.dagster_run.run_id
    recovered = f"e6-assets: marked run {run_id} failed: its process (pid {killed_pids[-1]} on "
    assert recovered in (tmp_path / "rebuild.err").read_text()

    assert output_files(data) == reference_files(full_build, SHARDS)
    assert temp_files(data) == []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records()
        assert not [r for r in records if r.dagster_run.status in IN_PROGRESS]
        status = {r.dagster_run.tags[PID_TAG]: r.dagster_run.status for r in records}
        assert [status[pid] for pid in killed_pids] == [dg.DagsterRunStatus.FAILURE] * 3
        assert status[str(build.pid)] == dg.DagsterRunStatus.SUCCESS
        assert instance.event_log_storage.get_concurrency_info("e6_shards").claimed_slots == []


def test_killed_while_merging_then_rebuilt_gives_the_same_merged_files(tmp_path, sample_dir, full_build):
    home, data = instance_home(tmp_path / "home"), tmp_path / "data"
    shutil.copytree(full_build.root, data)  # every shard built; the merged files not yet
    layout = DataLayout(data)
    layout.meta_cap_json.unlink()
    layout.meta_cap_tar_gz.unlink()
    args = ["--source", str(sample_dir), "--data-dir", str(data), "--shards", "0000...0004"]
    env = cli_env(home)

    build = start_build(args, tmp_path, env, tmp_path / "killed-merge")
    assert wait_until(build, lambda: any(data.glob(".meta_cap.json.*.tmp")))
    assert kill_group(build) == -signal.SIGKILL
    _assert_finals_are_whole(data, full_build)
    assert temp_files(data)  # the half-written merged file, beside its final path

    build = start_build(args, tmp_path, env, tmp_path / "rebuild")
    assert finish(build) == 0, (tmp_path / "rebuild.err").read_text()[-3000:]
    assert "temporary files left by an interrupted build" in (tmp_path / "rebuild.err").read_text()
    assert layout.meta_cap_json.read_bytes() == full_build.meta_cap_json.read_bytes()
    assert layout.meta_cap_tar_gz.read_bytes() == full_build.meta_cap_tar_gz.read_bytes()
    assert output_files(data) == output_files(full_build.root)
    assert temp_files(data) == []
