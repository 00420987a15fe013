"""End to end with real processes: `dagster dev` (webserver, daemon, code server) on 127.0.0.1 with a
temporary DAGSTER_HOME and the project's dagster.yaml; a backfill of a few shards is launched through
the GraphQL API, as the UI does, and the test waits for its runs and files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e6_assets_tests.dagster_dev import UiServer, dagster_dev
from e6_assets_tests.dagster_dev import graphql as dagster_dev_graphql

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


def graphql(url: str, query: str, variables: dict) -> dict:
    body = dagster_dev_graphql(url, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture
def server(tmp_path: Path, sample_dir: Path) -> Iterator[UiServer]:
    with dagster_dev(tmp_path, sample_dir, startup_timeout=STARTUP_TIMEOUT) as running:
        yield running


def test_backfill_launched_through_graphql_runs_and_writes_the_shards(server: UiServer) -> None:
    url, data = server.url, server.data_dir
    params = {
        "assetSelection": [{"path": [name]} for name in PER_SHARD_ASSETS],
        "partitionNames": SHARDS,
        "fromFailure": False,
        "title": "end-to-end test",
    }
    launched = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while True:
        backfill = graphql(url, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
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
