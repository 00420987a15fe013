"""The asset lists the code location, the jobs and the command line share, from the per-domain modules."""

from e6_assets.defs.captions.assets import CAPTION_ASSETS, MERGED_CAPTION_ASSETS, PER_SHARD_CAPTION_ASSETS
from e6_assets.defs.captions.source import caption_source
from e6_assets.defs.merge.assets import MERGE_ASSETS, MERGED_MERGE_ASSETS, PER_SHARD_MERGE_ASSETS
from e6_assets.defs.publish.assets import PUBLISH_ASSETS
from e6_assets.defs.recaption.assets import RECAPTION_ASSETS

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
