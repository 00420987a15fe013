"""The caption assets: raw -> rearranged (+ meta_cap fragments) -> tar shards (+ index); meta_cap.json.

Every per-shard asset has a single-run backfill policy, so a range of shards is one run; the body
loops over ``context.partition_keys`` and records each shard's numbers as that shard's metadata and
check results. The data work is in ``e6_assets.core.pipeline``.

Each step spreads its shards over worker processes (``DataDir.worker_count``) and records them in
shard order. What it stores per shard is one materialization (with the shard's numbers) and, for the
assets with checks, one check result: each stored event costs milliseconds, and these are what the
UI shows per shard.
"""

from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported by `dagster`; needed to aim results
)

from e6_assets.core import pipeline
from e6_assets.core.jsonl import SourceError
from e6_assets.defs.automation.conditions import rebuild_on_change
from e6_assets.defs.captions.source import CAPTION_SOURCE, RAW_CAPTIONS
from e6_assets.defs.partitions import SHARDS
from e6_assets.defs.per_shard import PER_SHARD, StepProgress
from e6_assets.defs.resources import CaptionSource, DataDir
from e6_assets.defs.versions import DATA_VERSION_TAG, SOURCE_VERSION, latest_versions
from e6_assets.event_storage import stored_together

CAPTION_OVERRIDES = dg.AssetKey("caption_overrides")
REARRANGED_CAPTIONS = dg.AssetKey("rearranged_captions")
CAPTION_TARS = dg.AssetKey("caption_tars")
META_CAP = dg.AssetKey("meta_cap")


def _aimed_at_latest(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, checks: list[dg.AssetCheckEvaluation]
) -> Iterator[dg.AssetCheckEvaluation]:
    """The per-shard check results, each pointing at the shard's materialization just recorded.

    Yielded after the step's MaterializeResult: a partitioned check result counts as current (and
    ``AutomationCondition.all_deps_blocking_checks_passed()`` sees it) only when it targets the
    latest materialization of its partition, and a raw ``AssetCheckEvaluation`` carries no target
    unless given one. Stored in one transaction: Dagster writes each check result on its own.
    """
    keys = {check.partition for check in checks if check.partition}
    latest = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=keys
    )
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(latest.values())), limit=len(latest) or 1
    ).records
    targets = {
        record.partition_key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        for record in records
    }
    with stored_together(instance):
        for check in checks:
            yield dg.AssetCheckEvaluation(
                asset_key=check.asset_key,
                check_name=check.check_name,
                passed=check.passed,
                metadata=check.metadata,
                target_materialization_data=targets.get(check.partition),
                severity=check.severity,
                description=check.description,
                blocking=check.blocking,
                partition=check.partition,
            )


def _observations_behind(
    instance: dg.DagsterInstance, built: dict[str, str]
) -> Iterator[dg.AssetObservation]:
    """An observation of ``caption_source`` for each shard whose latest observation differs from the
    rows this build read (the source changed, or changed back, since it was observed).

    The build records the version it read in each shard's metadata (``source_version``), which is
    what an observation compares against for a shard never observed. An observed shard's version
    must also be brought up to date here, in the same run: an observation that later found the
    shard's old rows again would otherwise record the version it already holds, which Dagster does
    not count as a change. Yielded before the materializations, so that the automation sensor sees
    them together or while this run is in progress, and requests nothing for them. After a build
    whose shards were observed as they are, there are none.
    """
    observed = latest_versions(instance, CAPTION_SOURCE, built)
    for key, version in built.items():
        if key in observed and observed[key] != version:
            yield dg.AssetObservation(CAPTION_SOURCE, partition=key, tags={DATA_VERSION_TAG: version})


@dg.asset(
    key=RAW_CAPTIONS,
    automation_condition=rebuild_on_change(),
    deps=[CAPTION_SOURCE],
    group_name="captions",
    kinds={"parquet"},
    code_version="1",
    description=(
        "The source rows of each shard (id % 1000), duplicates included: id, tags, regular_summary, "
        "brief_summary, response_finish_reason, and the file and line each came from. "
        "`raw/NNNN.parquet` under the data root."
    ),
    **PER_SHARD,
)
def raw_captions(context: dg.AssetExecutionContext, source: CaptionSource, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    resolved = source.resolve(layout.root)
    context.log.info(f"source: {resolved.description} ({len(resolved.files)} monthly files)")
    workers = data_dir.worker_count()
    stale = pipeline.files_to_stage(resolved, layout)
    try:
        with StepProgress(context, len(stale), "staging the source", "files") as progress:
            staging = pipeline.stage(resolved, layout, workers, stale, progress.advance)
    except SourceError as error:
        raise dg.Failure(description=str(error)) from error
    keys = context.partition_keys
    built: dict[str, str] = {}
    with StepProgress(context, len(keys)) as progress:
        for key, rows, version in pipeline.write_raw_shards(resolved, layout, keys, workers):
            context.add_asset_metadata(
                {"rows": rows, SOURCE_VERSION: version, "path": dg.MetadataValue.path(str(layout.raw(key)))},
                partition_key=key,
            )
            built[key] = version
            progress.advance(rows)
    yield from _observations_behind(context.instance, built)
    yield dg.MaterializeResult(
        metadata={
            "source": resolved.description,
            "synthetic": resolved.synthetic,
            "source_files": len(resolved.files),
            "source_files_staged": len(staging.staged),
            **resolved.metadata,
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            REARRANGED_CAPTIONS,
            # caption_overrides is defined with the recaption assets (defs/recaption/assets.py).
            deps=[RAW_CAPTIONS, CAPTION_OVERRIDES],
            group_name="captions",
            automation_condition=rebuild_on_change(),
            kinds={"parquet"},
            # 3: also writes the shard's meta_cap.json entries, meta_cap/NNNN.arrow (Arrow IPC, by id band).
            code_version="3",
            description=(
                "One row per post id (the later file, then the later line, wins): id, caption and "
                "where the caption came from (`summary`, `tags` or `empty`), by the dataset card's "
                "rule; a caption override (caption_overrides) replaces its post's caption "
                "(`override`). `rearranged/NNNN.parquet`; and the shard's entries of meta_cap.json, "
                "already serialised, for the merge: `meta_cap/NNNN.arrow`."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "caption_counts",
            asset=REARRANGED_CAPTIONS,
            partitions_def=SHARDS,
            description=(
                "Counts the shard's rows, captions from summaries, fallbacks to tags, empty captions, "
                "caption overrides and duplicates dropped. WARN when any post has an empty caption: it "
                "gets no member in the tar and trains without a caption."
            ),
        )
    ],
    can_subset=True,  # makes the check output optional: its results are yielded per shard below
    **PER_SHARD,
)
def rearranged_captions(context: dg.AssetExecutionContext, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    keys = context.partition_keys
    checks: list[dg.AssetCheckEvaluation] = []
    rearranged = pipeline.map_shards(pipeline.rearrange_shard, layout, keys, data_dir.worker_count())
    with StepProgress(context, len(keys)) as progress:
        for key, (counts, _) in rearranged:
            numbers = counts.as_dict()
            models = {"override_models": dict(counts.override_models)} if counts.override_models else {}
            context.add_asset_metadata(
                {**numbers, **models, "path": dg.MetadataValue.path(str(layout.rearranged(key)))},
                partition_key=key,
            )
            checks.append(
                dg.AssetCheckEvaluation(
                    asset_key=REARRANGED_CAPTIONS,
                    check_name="caption_counts",
                    passed=counts.empty == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata=numbers,
                    partition=key,
                )
            )
            progress.advance(counts.rows)
    yield dg.MaterializeResult(asset_key=REARRANGED_CAPTIONS)
    yield from _aimed_at_latest(context.instance, REARRANGED_CAPTIONS, checks)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CAPTION_TARS,
            deps=[REARRANGED_CAPTIONS],
            group_name="captions",
            automation_condition=rebuild_on_change(),
            kinds={"tar"},
            code_version="1",
            description=(
                "`captions/NNNN.tar`: one `{id}.caption` member per post with a non-empty caption, "
                "ascending id, byte for byte what Python's tarfile writes; and `captions/NNNN.json`, "
                "its hfutils index (offsets and sha256 of every member) for range reads."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "tar_matches_captions",
            asset=CAPTION_TARS,
            partitions_def=SHARDS,
            blocking=True,
            description=(
                "Reads the tar and its index back from disk. ERROR (and nothing downstream runs) when "
                "the member count differs from the shard's non-empty captions, or when the index's "
                "size, sha256, offsets or member hashes do not describe the tar."
            ),
        )
    ],
    can_subset=True,
    **PER_SHARD,
)
def caption_tars(context: dg.AssetExecutionContext, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    keys = context.partition_keys
    checks: list[dg.AssetCheckEvaluation] = []
    tars = pipeline.map_shards(pipeline.tar_shard, layout, keys, data_dir.worker_count())
    with StepProgress(context, len(keys)) as progress:
        for key, result in tars:
            index = result.index
            context.add_asset_metadata(
                {
                    "members": len(index.files),
                    "tar_bytes": index.filesize,
                    "sha256": index.hash_lfs,
                    "path": dg.MetadataValue.path(str(layout.tar(key))),
                    "index_path": dg.MetadataValue.path(str(layout.tar_index(key))),
                },
                partition_key=key,
            )
            checks.append(
                dg.AssetCheckEvaluation(
                    asset_key=CAPTION_TARS,
                    check_name="tar_matches_captions",
                    passed=not result.problems,
                    severity=dg.AssetCheckSeverity.ERROR,
                    blocking=True,
                    metadata={
                        "members": len(index.files),
                        "non_empty_captions": result.non_empty_captions,
                        "problems": "; ".join(result.problems) or "none",
                    },
                    partition=key,
                )
            )
            progress.advance(len(index.files))
    yield dg.MaterializeResult(asset_key=CAPTION_TARS)
    yield from _aimed_at_latest(context.instance, CAPTION_TARS, checks)


@dg.asset(
    key=META_CAP,
    automation_condition=rebuild_on_change(),
    deps=[dg.AssetDep(REARRANGED_CAPTIONS, partition_mapping=dg.AllPartitionMapping())],
    group_name="captions",
    kinds={"json"},
    code_version="1",
    description=(
        '`meta_cap.json` for kohya sd-scripts: {"<id>": {"caption": ...}} for every post, empty '
        "captions included, keys ascending by id; and `meta_cap.tar.gz`, a gzip tar holding it. "
        "Built from all 1000 shards."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "totals_match_shards",
            asset=META_CAP,
            description=(
                "The merged file's totals (entries written, empty captions, fallbacks to tags) equal "
                "the sums of the 1000 shards' caption_counts. ERROR when they differ: the merged file "
                "would not be what the shards say."
            ),
        )
    ],
)
def meta_cap(context: dg.AssetExecutionContext, data_dir: DataDir) -> dg.MaterializeResult:
    layout = data_dir.layout()
    try:
        result = pipeline.merge_meta_cap(layout, data_dir.worker_count())
    except pipeline.MissingShards as error:
        raise dg.Failure(description=str(error)) from error
    merged, shards = result.merged, result.shards
    context.log.info(
        f"meta_cap.json: {merged['rows']} entries, {merged['empty']} empty, {merged['from_tags']} from tags"
    )
    return dg.MaterializeResult(
        metadata={
            **merged,
            "duplicates_dropped": shards.duplicates_dropped,
            "json_bytes": layout.meta_cap_json.stat().st_size,
            "tar_gz_bytes": layout.meta_cap_tar_gz.stat().st_size,
            "path": dg.MetadataValue.path(str(layout.meta_cap_json)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="totals_match_shards",
                passed=result.totals_match,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    **{f"merged_{k}": v for k, v in merged.items()},
                    **{f"shards_{k}": getattr(shards, k) for k in merged},
                },
            )
        ],
    )


PER_SHARD_CAPTION_ASSETS = [raw_captions, rearranged_captions, caption_tars]
MERGED_CAPTION_ASSETS = [meta_cap]
CAPTION_ASSETS = [*PER_SHARD_CAPTION_ASSETS, *MERGED_CAPTION_ASSETS]
