"""Jobs a user can launch from the UI (asset backfills from the graph work as well)."""

from __future__ import annotations

import dagster as dg

from e6_assets.defs.assets import MERGED_ASSETS, PER_SHARD_ASSETS

build_shards = dg.define_asset_job(
    "build_shards",
    selection=dg.AssetSelection.assets(*PER_SHARD_ASSETS),
    description="Every per-shard asset for the chosen shards; launch a range as a backfill for one run.",
)
merge_meta = dg.define_asset_job(
    "merge_meta",
    selection=dg.AssetSelection.assets(*MERGED_ASSETS),
    description="The merged files built from all 1000 shards.",
)

JOBS = [build_shards, merge_meta]
