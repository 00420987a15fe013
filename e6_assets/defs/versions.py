"""Per-shard source versions, as recorded in the instance.

``caption_source`` records one data version per shard, a hash of the shard's source rows, and only
for shards whose hash differs from the version the instance already knows. ``raw_captions`` records,
in each shard's materialization metadata (``source_version``), the same hash of the rows it was built
from. Together they are what the instance knows of each shard's source: the latest observation, or
for a shard never observed, the version its latest build read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import dagster as dg

DATA_VERSION_TAG = "dagster/data_version"
SOURCE_VERSION = "source_version"  # raw_captions' per-shard metadata: the rows' version it was built from
_CHUNK = 500


def _latest_records(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    event_types: tuple[dg.DagsterEventType, ...],
    partitions: Collection[str] | None = None,
) -> Iterator[dg.EventLogRecord]:
    """The latest record of each partition (of ``partitions``, if given) among ``event_types``."""
    storage_ids: dict[str, int] = {}
    wanted_partitions = set(partitions) if partitions is not None else None
    if wanted_partitions == set():
        return
    for event_type in event_types:
        latest = instance.get_latest_storage_id_by_partition(
            asset_key, event_type, partitions=wanted_partitions
        )
        for key, storage_id in latest.items():
            storage_ids[key] = max(storage_id, storage_ids.get(key, 0))
    wanted = sorted(storage_ids.values())
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        records_filter = dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk)
        for event_type in event_types:
            fetch = (
                instance.fetch_observations
                if event_type == dg.DagsterEventType.ASSET_OBSERVATION
                else instance.fetch_materializations
            )
            yield from fetch(records_filter, limit=len(chunk)).records


def latest_versions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Collection[str] | None = None
) -> dict[str, str]:
    """The latest recorded data version of every partition of an asset (materialization or observation)."""
    event_types = (dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.ASSET_MATERIALIZATION)
    versions: dict[str, str] = {}
    for record in _latest_records(instance, asset_key, event_types, partitions):
        tags = record.event_log_entry.tags or {}
        if record.partition_key and DATA_VERSION_TAG in tags:
            versions[record.partition_key] = tags[DATA_VERSION_TAG]
    return versions


def built_source_versions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Collection[str] | None = None
) -> dict[str, str]:
    """The source version each shard's latest materialization of ``asset_key`` recorded it was built
    from (its ``source_version`` metadata); shards built without one are left out."""
    versions: dict[str, str] = {}
    materializations = (dg.DagsterEventType.ASSET_MATERIALIZATION,)
    for record in _latest_records(instance, asset_key, materializations, partitions):
        materialization = record.asset_materialization
        value = materialization.metadata.get(SOURCE_VERSION) if materialization else None
        if record.partition_key and value is not None:
            versions[record.partition_key] = str(value.value)
    return versions
