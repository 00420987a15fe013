"""Content data versions: one value per shard, derived from the shard's rows or bytes.

Dagster records one data version per step output; in a ranged run every shard of an asset would
get the same one. These helpers give each shard its own version from its content, so a shard whose
rows did not change keeps its version across source commits and code changes that do not touch it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

VERSION_FORMAT = "1"  # bump when the hashing changes: every shard gets a new version once
DATA_VERSION_TAG = "dagster/data_version"


def table_version(table: pa.Table) -> str:
    """A stable hash of a table's column names and rows, in order (nulls and empty strings differ)."""
    digest = hashlib.sha256(f"{VERSION_FORMAT}:{','.join(table.column_names)}:{table.num_rows}".encode())
    if table.num_rows:
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:32]


def source_fingerprint(files: Iterable[Path], chunk: int = 1 << 20) -> str:
    """A fingerprint of a folder of source files: each file's name, size and content hash."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        content = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                content.update(block)
        digest.update(f"{path.name}\0{path.stat().st_size}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


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
