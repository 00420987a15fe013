"""Software-defined assets, one module per domain."""

from e6_assets.assets.captions import CAPTION_ASSETS, MERGED_CAPTION_ASSETS, PER_SHARD_CAPTION_ASSETS
from e6_assets.assets.merge import MERGE_ASSETS, MERGED_MERGE_ASSETS, PER_SHARD_MERGE_ASSETS
from e6_assets.assets.publish import PUBLISH_ASSETS
from e6_assets.assets.recaption import RECAPTION_ASSETS
from e6_assets.assets.source import caption_source

SOURCE_ASSETS = [caption_source]
PER_SHARD_ASSETS = [*PER_SHARD_CAPTION_ASSETS, *PER_SHARD_MERGE_ASSETS]
MERGED_ASSETS = [*MERGED_CAPTION_ASSETS, *MERGED_MERGE_ASSETS]
# The build. PUBLISH_ASSETS (hub_release) also need the publish_target resource, RECAPTION_ASSETS the
# recaption resource: definitions adds them.
ALL_ASSETS = [*SOURCE_ASSETS, *CAPTION_ASSETS, *MERGE_ASSETS]

__all__ = [
    "ALL_ASSETS",
    "MERGED_ASSETS",
    "PER_SHARD_ASSETS",
    "PUBLISH_ASSETS",
    "RECAPTION_ASSETS",
    "SOURCE_ASSETS",
]
