"""The upstream monthly caption files as an observed, partitioned source asset.

An observation stages the source (only files whose size or modification time changed are parsed
again), hashes each shard's rows, and records a data version for every shard whose hash differs
from the version the instance already knows (``e6_assets.defs.versions``): the latest observation, or for
a shard never observed, the ``source_version`` its latest ``raw_captions`` build recorded. So a new
Hub commit that leaves a shard's rows alone leaves that shard's version alone, and an observation
after a build finds nothing changed: only the shards whose rows really changed become eligible for a
rebuild downstream.
"""

from __future__ import annotations

import dagster as dg

from e6_assets.core import pipeline
from e6_assets.core.fingerprints import source_fingerprint
from e6_assets.core.jsonl import SourceError
from e6_assets.core.staging import stage_source
from e6_assets.defs.partitions import SHARDS
from e6_assets.defs.resources import CaptionSource, DataDir
from e6_assets.defs.versions import built_source_versions, latest_versions

CAPTION_SOURCE = dg.AssetKey("caption_source")
RAW_CAPTIONS = dg.AssetKey("raw_captions")  # its builds record the source version they read


def source_revision(resolved) -> str:
    """The Hub commit sha, or for a local folder a fingerprint of its files (name, size, content)."""
    return resolved.revision or f"files:{source_fingerprint(resolved.files)}"


def shard_versions(source: CaptionSource, data_dir: DataDir) -> tuple[str, dict[str, str]]:
    """The source's revision and the content version of each of the 1000 shards."""
    layout = data_dir.layout()
    resolved = source.resolve(layout.root)
    stage_source(resolved.files, layout.staged_dir)
    return source_revision(resolved), pipeline.source_versions(resolved, layout)


def known_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    """The version the instance knows for each shard: its latest observation, else (never observed)
    the version its latest build read. A build keeps an observed shard's observation current (see
    ``raw_captions``), so the observation, when there is one, is never older than the build."""
    known = latest_versions(instance, CAPTION_SOURCE)
    unobserved = set(SHARDS.get_partition_keys()) - set(known)
    return {**built_source_versions(instance, RAW_CAPTIONS, unobserved), **known}


@dg.observable_source_asset(
    key=CAPTION_SOURCE,
    partitions_def=SHARDS,
    group_name="captions",
    description=(
        "The monthly YYYY-MM_grouped.jsonl files of lodestones/e621-captions (or the folder or sample "
        "E6_SOURCE names). Observed on a schedule and from the UI: each shard's data version is a hash "
        "of that shard's source rows, recorded only when it differs from what the instance knows (the "
        "last observation, or the rows the last build read), so only shards whose rows changed are "
        "rebuilt downstream."
    ),
)
def caption_source(
    context: dg.AssetExecutionContext, source: CaptionSource, data_dir: DataDir
) -> dg.DataVersionsByPartition:
    try:
        revision, versions = shard_versions(source, data_dir)
    except SourceError as error:
        raise dg.Failure(description=str(error)) from error
    known = known_versions(context.instance)
    changed = {key: version for key, version in versions.items() if known.get(key) != version}
    context.log.info(f"source revision {revision}: {len(changed)} of {len(versions)} shards changed")
    return dg.DataVersionsByPartition({key: dg.DataVersion(v) for key, v in changed.items()})
