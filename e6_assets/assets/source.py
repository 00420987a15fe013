"""The upstream monthly caption files as an observed, partitioned source asset.

An observation stages the source (only files whose size or modification time changed are parsed
again), hashes each shard's rows, and records a data version for every shard whose hash differs
from the one last recorded. A new Hub commit that leaves a shard's rows alone leaves that shard's
version alone, so only the shards that really changed become eligible for a rebuild downstream.
"""

from __future__ import annotations

import dagster as dg

from e6_assets.fingerprints import source_fingerprint, table_version
from e6_assets.jsonl import SourceError
from e6_assets.partitions import SHARDS
from e6_assets.resources import CaptionSource, DataDir
from e6_assets.shards import SHARD_KEYS
from e6_assets.staging import STAGING_COLUMNS, StagedSource, stage_source
from e6_assets.versions import latest_versions

CAPTION_SOURCE = dg.AssetKey("caption_source")


def source_revision(resolved) -> str:
    """The Hub commit sha, or for a local folder a fingerprint of its files (name, size, content)."""
    return resolved.revision or f"files:{source_fingerprint(resolved.files)}"


def shard_versions(source: CaptionSource, data_dir: DataDir) -> tuple[str, dict[str, str]]:
    """The source's revision and the content version of each of the 1000 shards."""
    layout = data_dir.layout()
    resolved = source.resolve(layout.root)
    stage_source(resolved.files, layout.staged_dir)
    staged = StagedSource(resolved.files, layout.staged_dir)
    versions = {
        SHARD_KEYS[shard]: table_version(rows.drop_columns(STAGING_COLUMNS))
        for shard, rows in staged.iter_shard_tables(range(len(SHARD_KEYS)))
    }
    return source_revision(resolved), versions


@dg.observable_source_asset(
    key=CAPTION_SOURCE,
    partitions_def=SHARDS,
    group_name="captions",
    description=(
        "The monthly YYYY-MM_grouped.jsonl files of lodestones/e621-captions (or the folder or sample "
        "E6_SOURCE names). Observed on a schedule and from the UI: each shard's data version is a hash "
        "of that shard's source rows, so only shards whose rows changed are rebuilt downstream."
    ),
)
def caption_source(
    context: dg.AssetExecutionContext, source: CaptionSource, data_dir: DataDir
) -> dg.DataVersionsByPartition:
    try:
        revision, versions = shard_versions(source, data_dir)
    except SourceError as error:
        raise dg.Failure(description=str(error)) from error
    previous = latest_versions(context.instance, CAPTION_SOURCE)
    changed = {key: version for key, version in versions.items() if previous.get(key) != version}
    context.log.info(f"source revision {revision}: {len(changed)} of {len(versions)} shards changed")
    return dg.DataVersionsByPartition({key: dg.DataVersion(v) for key, v in changed.items()})
