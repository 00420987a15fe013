"""What every per-shard asset shares: its partitioning, backfill policy and pool, and progress lines."""

import dagster as dg

from e6_assets.partitions import SHARDS

SHARD_POOL = "e6_shards"  # dagster.yaml limits this pool so that two runs never write one shard


def shard_backfill_policy() -> dg.BackfillPolicy:
    """How a backfill of a range of shards is cut into runs, from ``E6_SHARDS_PER_RUN`` (read when the
    code location loads): unset or 0, the range is one run (one machine); N, runs of at most N shards,
    which a run launcher can spread over workers (executors spread steps, not partitions)."""
    value = (dg.EnvVar("E6_SHARDS_PER_RUN").get_value("") or "0").strip()
    if not value.isdigit():
        raise ValueError(f"E6_SHARDS_PER_RUN must be a whole number of shards (0: one run), got {value!r}")
    shards = int(value)
    return dg.BackfillPolicy.multi_run(shards) if shards else dg.BackfillPolicy.single_run()


PER_SHARD = dict(
    partitions_def=SHARDS,
    backfill_policy=shard_backfill_policy(),
    pool=SHARD_POOL,
)


def log_progress(context: dg.AssetExecutionContext, done: int, total: int) -> None:
    """About ten lines per step, whatever the number of shards: each log line is a stored event."""
    if done == total or done % max(1, total // 10) == 0:
        context.log.info(f"{context.asset_key.to_user_string()}: {done}/{total} shards")
