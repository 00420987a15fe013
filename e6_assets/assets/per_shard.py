"""What every per-shard asset shares: its partitioning, backfill policy and pool, and progress lines."""

import dagster as dg

from e6_assets.partitions import SHARDS

SHARD_POOL = "e6_shards"  # dagster.yaml limits this pool so that two runs never write one shard

PER_SHARD = dict(
    partitions_def=SHARDS,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range of shards is one run
    pool=SHARD_POOL,
)


def log_progress(context: dg.AssetExecutionContext, done: int, total: int) -> None:
    """About ten lines per step, whatever the number of shards: each log line is a stored event."""
    if done == total or done % max(1, total // 10) == 0:
        context.log.info(f"{context.asset_key.to_user_string()}: {done}/{total} shards")
