"""The one partitions definition every per-shard asset uses: the 1000 shards of ``e6_assets.core.shards``."""

import dagster as dg

from e6_assets.core.shards import SHARD_KEYS

SHARDS = dg.StaticPartitionsDefinition(SHARD_KEYS)
