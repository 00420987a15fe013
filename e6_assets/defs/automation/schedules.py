"""Schedules: observe the source, and fill every missing or failed shard in a few ranged runs."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from e6_assets.core.shards import SHARD_KEYS
from e6_assets.defs.captions.assets import CAPTION_OVERRIDES, PER_SHARD_CAPTION_ASSETS
from e6_assets.defs.captions.source import CAPTION_SOURCE
from e6_assets.defs.partitions import SHARDS

OBSERVE_JOB = "observe_source"
FILL_SCHEDULE = "fill_missing_shards"
OBSERVE_SCHEDULE = "observe_source_schedule"
OBSERVE_OVERRIDES_JOB = "observe_caption_overrides"
OBSERVE_OVERRIDES_SCHEDULE = "observe_caption_overrides_schedule"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
DEFAULT_MAX_RANGES = 4
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

observe_source = dg.define_asset_job(
    OBSERVE_JOB,
    selection=dg.AssetSelection.assets(CAPTION_SOURCE),
    description="Observe caption_source: record a new data version for every shard whose rows changed.",
)

observe_caption_overrides = dg.define_asset_job(
    OBSERVE_OVERRIDES_JOB,
    selection=dg.AssetSelection.assets(CAPTION_OVERRIDES),
    description=(
        "Observe caption_overrides: stage the E6_CAPTION_OVERRIDES folder and record a new data version "
        "for every shard whose overrides changed."
    ),
)


def shard_ranges(keys: list[str], max_ranges: int = DEFAULT_MAX_RANGES) -> list[tuple[str, str]]:
    """The fewest contiguous ranges covering ``keys``, at most ``max_ranges`` of them.

    Contiguous keys form one range; when there are more ranges than ``max_ranges``, the ranges
    separated by the smallest gaps are joined (rebuilding a few present shards costs less than
    starting another run).
    """
    numbers = sorted({int(key) for key in keys})
    if not numbers:
        return []
    ranges: list[list[int]] = [[numbers[0], numbers[0]]]
    for number in numbers[1:]:
        if number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    while len(ranges) > max(1, max_ranges):
        _, index = min((ranges[i + 1][0] - ranges[i][1], i) for i in range(len(ranges) - 1))
        ranges[index : index + 2] = [[ranges[index][0], ranges[index + 1][1]]]
    return [(SHARD_KEYS[first], SHARD_KEYS[last]) for first, last in ranges]


def shards_to_fill(instance: dg.DagsterInstance) -> list[str]:
    """Shards that some per-shard caption asset has never materialized, whose latest attempt failed,
    or whose latest blocking check result (on the latest materialization) failed.

    The merge fragments are left out: they are only built when an id universe is configured."""
    wanted: set[str] = set()
    blocking: list[dg.AssetCheckKey] = []
    for assets_def in PER_SHARD_CAPTION_ASSETS:
        for asset_key in assets_def.keys:
            done = instance.get_materialized_partitions(asset_key)
            wanted.update(key for key in SHARD_KEYS if key not in done)
            statuses = instance.get_status_by_partition(asset_key, SHARD_KEYS, SHARDS) or {}
            wanted.update(key for key, status in statuses.items() if status == dg.AssetPartitionStatus.FAILED)
        blocking.extend(spec.key for spec in assets_def.check_specs if spec.blocking)
    for info in instance.event_log_storage.get_asset_check_partition_info(blocking):
        failed = info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED
        if failed and info.is_current and info.partition_key:
            wanted.add(info.partition_key)
    return sorted(wanted)


def fill_requests(
    instance: dg.DagsterInstance, job_name: str, tick: str, max_ranges: int = DEFAULT_MAX_RANGES
) -> dg.SkipReason | list[dg.RunRequest]:
    """One RunRequest per range of shards to fill, with the range tags that make it one ranged run."""
    busy = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS), limit=1)
    if busy:
        return dg.SkipReason(f"a {job_name} run is still queued or in progress")
    missing = shards_to_fill(instance)
    if not missing:
        return dg.SkipReason("every shard of every per-shard asset is materialized")
    return [
        dg.RunRequest(
            run_key=f"fill-{first}-{last}-{tick}", tags={RANGE_START_TAG: first, RANGE_END_TAG: last}
        )
        for first, last in shard_ranges(missing, max_ranges)
    ]


def build_fill_schedule(cron_schedule: str, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=FILL_SCHEDULE,
        cron_schedule=cron_schedule,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "Requests every missing or failed shard of the per-shard assets as one ranged run (a few "
            "when the shards are far apart), never one run per shard. Skips while such a run is going."
        ),
    )
    def fill_missing_shards(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | list[dg.RunRequest]:
        return fill_requests(
            context.instance, job.name, context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        )

    return fill_missing_shards


def build_observe_schedule(cron_schedule: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=OBSERVE_SCHEDULE,
        cron_schedule=cron_schedule,
        job=observe_source,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Observes caption_source (a new Hub commit or changed local files) on an interval.",
    )


def build_observe_overrides_schedule(cron_schedule: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=OBSERVE_OVERRIDES_SCHEDULE,
        cron_schedule=cron_schedule,
        job=observe_caption_overrides,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Observes caption_overrides (changed files in E6_CAPTION_OVERRIDES) on E6_OBSERVE_CRON.",
    )
