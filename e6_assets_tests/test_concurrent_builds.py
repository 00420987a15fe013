"""Two ``e6-assets build`` at once on one instance or one data root: the second says it waits and
waits; neither hangs; their runs never overlap, so no shard is written by both at once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.run_recovery import PID_TAG
from e6_assets_tests.cli_process import (
    cli_env,
    finish,
    instance_home,
    output_files,
    reference_files,
    start_build,
    wait_until,
)

SHARDS = [f"{i:04d}" for i in range(10)]


def _runs(home: Path) -> list[dg.RunRecord]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_run_records())


@pytest.mark.parametrize(
    ("second_home", "waits_for"),
    [("home", "the Dagster instance"), ("other-home", "the data root")],
    ids=["same-instance-same-data-root", "other-instance-same-data-root"],
)
def test_a_second_build_waits_for_the_first_and_both_complete(
    tmp_path, sample_dir, full_build, second_home, waits_for
):
    data = tmp_path / "data"
    homes = [instance_home(tmp_path / "home"), instance_home(tmp_path / second_home)]
    args = ["--source", str(sample_dir), "--data-dir", str(data), "--shards", "0000...0009", "--no-merge"]

    first = start_build(args, tmp_path, cli_env(homes[0]), tmp_path / "first")
    # Freeze the first build while it stages the source (between two Dagster events), so that
    # the second one certainly finds it running.
    assert wait_until(first, lambda: DataLayout(data).staged_dir.is_dir())
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = start_build(args, tmp_path, cli_env(homes[1]), tmp_path / "second")
        waiting = f"is using {waits_for} {homes[0] if 'instance' in waits_for else data}; waiting for it"
        assert wait_until(second, lambda: waiting in (tmp_path / "second.err").read_text())
        assert f"(pid {first.pid} on " in (tmp_path / "second.err").read_text()
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert finish(first) == 0, (tmp_path / "first.err").read_text()[-3000:]
    assert finish(second) == 0, (tmp_path / "second.err").read_text()[-3000:]

    runs = {run.dagster_run.run_id: run for home in set(homes) for run in _runs(home)}.values()
    first_runs = [run for run in runs if run.dagster_run.tags[PID_TAG] == str(first.pid)]
    second_runs = [run for run in runs if run.dagster_run.tags[PID_TAG] == str(second.pid)]
    assert first_runs and second_runs
    assert all(run.dagster_run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert max(run.end_time for run in first_runs) <= min(run.start_time for run in second_runs)
    assert output_files(data) == reference_files(full_build, SHARDS)
