"""``e6-assets build`` as a user runs it, on the project's SQLite instance and on PostgreSQL
(deploy/postgres/dagster.yaml, a throwaway database of the test server): the same run, the same
numbers recorded per shard, the same files."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.core.pipeline import read_counts
from e6_assets.core.shards import SHARD_KEYS
from e6_assets_tests.services import InstanceConfig

SHARDS = SHARD_KEYS[:20]


@dataclass(frozen=True)
class Build:
    result: subprocess.CompletedProcess
    home: Path
    data: Path
    config: InstanceConfig

    def instance(self) -> AbstractContextManager[dg.DagsterInstance]:
        """The instance the build recorded its run in, read as the UI would."""
        return self.config.open(self.home)


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, instance_config: InstanceConfig
) -> Build:
    root = tmp_path_factory.mktemp(f"build-{instance_config.kind}")
    home = instance_config.home(root / "home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("E6_", "DAGSTER_"))},
        **instance_config.env,
        "DAGSTER_HOME": str(home),
        # A deployment that spreads backfills over workers: a build from the command line stays one run.
        "E6_SHARDS_PER_RUN": "25",
    }
    result = subprocess.run(
        [
            *[sys.executable, "-m", "e6_assets.cli", "build"],
            *["--source", str(sample_dir), "--shards", f"{SHARDS[0]}...{SHARDS[-1]}"],
            *["--data-dir", str(root / "data")],
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    return Build(result, home, root / "data", instance_config)


def test_build_succeeds_as_one_run_recorded_in_the_instance(built: Build) -> None:
    assert built.result.returncode == 0, built.result.stderr
    assert f"shards: {len(SHARDS)} ({SHARDS[0]}...{SHARDS[-1]}), rows:" in built.result.stdout
    with built.instance() as instance:
        [run] = instance.get_run_records()
        assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert run.dagster_run.tags["dagster/asset_partition_range_end"] == SHARDS[-1]
        for asset in ("raw_captions", "rearranged_captions", "caption_tars"):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(SHARDS), asset


def test_build_records_each_shards_numbers(built: Build) -> None:
    layout = DataLayout(built.data)
    with built.instance() as instance:
        for shard in (SHARDS[0], SHARDS[7], SHARDS[-1]):
            [record] = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("rearranged_captions"), asset_partitions=[shard]),
                limit=1,
            ).records
            numbers = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            counts = read_counts(layout, shard).as_dict()
            assert {k: numbers[k] for k in counts} == counts
            assert layout.tar(shard).is_file()
