"""Content data versions: one value per shard, derived from the shard's rows or bytes.

Dagster records one data version per step output; in a ranged run every shard of an asset would
get the same one. These helpers give each shard its own version from its content, so a shard whose
rows did not change keeps its version across source commits and code changes that do not touch it.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

DATA_VERSION_TAG = "dagster/data_version"


def content_version_events(asset_key: dg.AssetKey, versions: Mapping[str, str]) -> list[dg.AssetObservation]:
    """One observation per shard carrying the shard's content version as its data version.

    Logged after the step's materializations, it is the latest event with a data version for the
    shard, which is what ``AutomationCondition.data_version_changed()`` compares between ticks.
    """
    return [
        dg.AssetObservation(asset_key=asset_key, partition=key, tags={DATA_VERSION_TAG: version})
        for key, version in versions.items()
    ]


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
