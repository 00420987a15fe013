"""``PooledSqliteEventLogStorage`` records what Dagster's own SQLite event log records.

The same ranged run (per-partition materializations, which Dagster stores as one batch, and
per-partition check results stored together) on an instance with the project's class and on one with
Dagster's default class: the same events in the same order, the same latest materialization and run
per asset, the same check results (and planned checks) per partition.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.event_storage import PooledSqliteEventLogStorage, stored_together
from e6_assets_tests.cli_process import instance_home
from e6_assets_tests.conftest import range_tags

PARTS = dg.StaticPartitionsDefinition([f"p{i}" for i in range(6)])
TOY = dg.AssetKey("toy")
CHECK = dg.AssetCheckKey(TOY, "even")


@dg.multi_asset(
    specs=[dg.AssetSpec(TOY)],
    check_specs=[dg.AssetCheckSpec("even", asset=TOY, partitions_def=PARTS)],
    partitions_def=PARTS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def toy(context: dg.AssetExecutionContext) -> Iterator:
    for index, key in enumerate(context.partition_keys):
        context.add_asset_metadata({"index": index}, partition_key=key)
    yield dg.MaterializeResult(asset_key=TOY)
    with stored_together(context.instance):
        for index, key in enumerate(context.partition_keys[:-1]):  # the last one stays planned
            yield dg.AssetCheckEvaluation(
                asset_key=TOY, check_name="even", passed=index % 2 == 0, partition=key, metadata={"i": index}
            )


def _default_sqlite_home(folder: Path) -> Path:
    folder.mkdir(parents=True)
    storage = {"module": "dagster.core.storage.event_log", "class": "SqliteEventLogStorage"}
    storage["config"] = {"base_dir": str(folder / "history" / "runs")}
    (folder / "dagster.yaml").write_text(json.dumps({"event_log_storage": storage}))
    return folder


def _what_is_recorded(home: Path) -> dict:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([toy], instance=instance, tags=range_tags("p1", "p4"))
        assert result.success
        run_id = result.run_id
        [record] = instance.get_asset_records([TOY])
        entry = record.asset_entry
        latest = entry.last_materialization_record
        events = instance.get_records_for_run(run_id, limit=1000).records
        checks = instance.event_log_storage.get_asset_check_partition_info([CHECK], after_storage_id=None)
        return {
            "storage": type(instance.event_log_storage).__name__,
            "events": [
                (event.event_log_entry.dagster_event_type, event.event_log_entry.dagster_event.partition)
                for event in events
                if event.event_log_entry.is_dagster_event
            ],
            "latest_partition": latest.partition_key,
            "latest_metadata": latest.asset_materialization.metadata,
            "latest_is_last_event": latest.storage_id
            == max(r.storage_id for r in instance.fetch_materializations(TOY, limit=10).records),
            "last_run_is_this_run": entry.last_run_id == run_id,
            "materialized": instance.get_materialized_partitions(TOY),
            "checks": {info.partition_key: info.latest_execution_status.value for info in checks},
            "checks_aimed": sorted(info.partition_key for info in checks if info.is_current),
        }


def test_pooled_storage_records_what_dagsters_sqlite_storage_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as e6-assets sets it for its runs
    pooled = _what_is_recorded(instance_home(tmp_path / "pooled"))
    default = _what_is_recorded(_default_sqlite_home(tmp_path / "default"))
    assert pooled.pop("storage") == PooledSqliteEventLogStorage.__name__
    assert default.pop("storage") == "SqliteEventLogStorage"
    assert pooled == default
    assert pooled["latest_is_last_event"]
    assert pooled["last_run_is_this_run"]
    assert pooled["materialized"] == {"p1", "p2", "p3", "p4"}
    assert pooled["checks"] == {"p1": "SUCCEEDED", "p2": "FAILED", "p3": "SUCCEEDED", "p4": "PLANNED"}
    assert [kind for kind, _ in pooled["events"]].count(dg.DagsterEventType.ASSET_CHECK_EVALUATION) == 3
