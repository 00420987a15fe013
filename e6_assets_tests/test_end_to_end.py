"""End to end with real processes: `dagster dev` (webserver, daemon, code server) on 127.0.0.1 with a
temporary DAGSTER_HOME and the project's dagster.yaml (SQLite), or deploy/postgres/dagster.yaml on a
throwaway PostgreSQL database; a backfill of a few shards is launched through the GraphQL API, as the
UI does, and the test waits for its runs and files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e6_assets_tests.dagster_dev import UiServer, dagster_dev, run_backfill, run_tags
from e6_assets_tests.services import InstanceConfig

SHARDS = ["0000", "0001", "0002"]
PER_SHARD_ASSETS = ["raw_captions", "rearranged_captions", "caption_tars"]
STARTUP_TIMEOUT = 180.0
BACKFILL_TIMEOUT = 300.0


@pytest.fixture
def server(tmp_path: Path, sample_dir: Path, instance_config: InstanceConfig) -> Iterator[UiServer]:
    with dagster_dev(
        tmp_path,
        sample_dir,
        startup_timeout=STARTUP_TIMEOUT,
        dagster_yaml=instance_config.dagster_yaml,
        extra_env=instance_config.env,
    ) as running:
        yield running


def test_backfill_launched_through_graphql_runs_and_writes_the_shards(server: UiServer) -> None:
    backfill = run_backfill(server.url, PER_SHARD_ASSETS, SHARDS, BACKFILL_TIMEOUT)

    runs = backfill["runs"]
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert runs and all(run["status"] == "SUCCESS" for run in runs), runs
    # The single-run backfill policy: the three shards of all four assets are one ranged run.
    assert len(runs) == 1, runs
    ranges = {
        (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end"))
        for tags in map(run_tags, runs)
    }
    assert ranges == {(SHARDS[0], SHARDS[-1])}
    data = server.data_dir
    for shard in SHARDS:
        assert (data / "captions" / f"{shard}.tar").is_file()
        assert (data / "captions" / f"{shard}.json").is_file()
        assert (data / "meta_cap" / f"{shard}.arrow").is_file()
    assert not (data / "captions" / "0003.tar").exists()
