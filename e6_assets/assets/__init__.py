"""Software-defined assets, one module per domain."""

from e6_assets.assets.captions import CAPTION_ASSETS, MERGED_CAPTION_ASSETS, PER_SHARD_CAPTION_ASSETS
from e6_assets.assets.source import caption_source

SOURCE_ASSETS = [caption_source]
PER_SHARD_ASSETS = [*PER_SHARD_CAPTION_ASSETS]
MERGED_ASSETS = [*MERGED_CAPTION_ASSETS]
ALL_ASSETS = [*SOURCE_ASSETS, *CAPTION_ASSETS]

__all__ = ["ALL_ASSETS", "MERGED_ASSETS", "PER_SHARD_ASSETS", "SOURCE_ASSETS"]
