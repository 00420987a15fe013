"""Per-shard data versions of an observed source, as recorded in the instance.

``caption_source`` records one data version per shard, a hash of the shard's source rows, and only
for shards whose hash changed: so a shard whose rows did not change keeps its version across source
commits, and only the shards that changed are rebuilt downstream.
"""

from __future__ import annotations

import dagster as dg

DATA_VERSION_TAG = "dagster/data_version"


def latest_versions(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dict[str, str]:
    """The latest recorded data version of every partition of an asset (materialization or observation)."""
    storage_ids: dict[str, int] = {}
    for event_type in (dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.ASSET_MATERIALIZATION):
        for key, storage_id in instance.get_latest_storage_id_by_partition(asset_key, event_type).items():
            storage_ids[key] = max(storage_id, storage_ids.get(key, 0))
    if not storage_ids:
        return {}
    wanted = list(storage_ids.values())
    versions: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        records_filter = dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk)
        for fetch in (instance.fetch_observations, instance.fetch_materializations):
            for record in fetch(records_filter, limit=len(chunk)).records:
                tags = record.event_log_entry.tags or {}
                if record.partition_key and DATA_VERSION_TAG in tags:
                    versions[record.partition_key] = tags[DATA_VERSION_TAG]
    return versions
