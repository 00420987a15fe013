"""The caption assets: raw -> rearranged -> tar shards (+ index) -> meta_cap fragments -> meta_cap.json.

Every per-shard asset has a single-run backfill policy, so a range of shards is one run; the body
loops over ``context.partition_keys`` and records each shard's numbers as that shard's metadata and
check results. The data work lives in the plain modules these functions call.

Each per-shard asset also records a data version per shard from the shard's content (a hash of its
rows, or the tar's sha256), logged as an observation of that shard after the step's
materializations; with the automation conditions in ``e6_assets.automation`` a rebuild whose
content did not change does not make the shard's downstream eligible.
"""

import json
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported by `dagster`; needed to aim results
)

from e6_assets.assets.source import CAPTION_SOURCE
from e6_assets.atomic import atomic_path
from e6_assets.automation import rebuild_on_change
from e6_assets.captions import CaptionCounts, count_captions, latest_row_per_id, rearrange
from e6_assets.jsonl import SourceError
from e6_assets.meta_json import caption_entries, merge_fragments, write_fragment, write_tar_gz
from e6_assets.partitions import SHARD_KEYS, SHARDS
from e6_assets.resources import CaptionSource, DataDir
from e6_assets.staging import StagedSource, stage_source
from e6_assets.tars import TarIndex, index_problems, write_tar
from e6_assets.versions import content_version_events, table_version

SHARD_POOL = "e6_shards"  # dagster.yaml limits this pool so that two runs never write one shard
_COUNTS_KEY = b"e6_assets.caption_counts"

RAW_CAPTIONS = dg.AssetKey("raw_captions")
REARRANGED_CAPTIONS = dg.AssetKey("rearranged_captions")
CAPTION_TARS = dg.AssetKey("caption_tars")
META_CAP_FRAGMENTS = dg.AssetKey("meta_cap_fragments")
META_CAP = dg.AssetKey("meta_cap")

_PER_SHARD = dict(
    partitions_def=SHARDS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=SHARD_POOL,
)


def _progress(context: dg.AssetExecutionContext, done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        context.log.info(f"{context.asset_key.to_user_string()}: {done}/{total} shards")


def _write_parquet(path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _aimed_at_latest(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, checks: list[dg.AssetCheckEvaluation]
) -> Iterator[dg.AssetCheckEvaluation]:
    """The per-shard check results, each pointing at the shard's materialization just recorded.

    Yielded after the step's MaterializeResult: a partitioned check result counts as current (and
    ``AutomationCondition.all_deps_blocking_checks_passed()`` sees it) only when it targets the
    latest materialization of its partition, and a raw ``AssetCheckEvaluation`` carries no target
    unless given one.
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


def read_counts(path) -> CaptionCounts:
    """The caption counts stored in a rearranged shard's Parquet footer."""
    metadata = pq.read_schema(path).metadata or {}
    return CaptionCounts(**json.loads(metadata[_COUNTS_KEY]))


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
    **_PER_SHARD,
)
def raw_captions(context: dg.AssetExecutionContext, source: CaptionSource, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    resolved = source.resolve(layout.root)
    context.log.info(f"source: {resolved.description} ({len(resolved.files)} monthly files)")
    try:
        staging = stage_source(resolved.files, layout.staged_dir)
    except SourceError as error:
        raise dg.Failure(description=str(error)) from error
    keys = context.partition_keys
    staged = StagedSource(resolved.files, layout.staged_dir)
    versions: dict[str, str] = {}
    for done, (shard, rows) in enumerate(staged.iter_shard_tables([int(k) for k in keys]), start=1):
        key = SHARD_KEYS[shard]
        rows = rows.drop_columns(["shard"])
        _write_parquet(layout.raw(key), rows)
        versions[key] = table_version(rows)  # equals caption_source's version of the shard
        context.add_asset_metadata(
            {"rows": rows.num_rows, "path": dg.MetadataValue.path(str(layout.raw(key)))}, partition_key=key
        )
        _progress(context, done, len(keys))
    yield dg.MaterializeResult(
        metadata={
            "source": resolved.description,
            "synthetic": resolved.synthetic,
            "source_files": len(resolved.files),
            "source_files_staged": len(staging.staged),
            **resolved.metadata,
        }
    )
    yield from content_version_events(RAW_CAPTIONS, versions)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            REARRANGED_CAPTIONS,
            deps=[RAW_CAPTIONS],
            group_name="captions",
            automation_condition=rebuild_on_change(),
            kinds={"parquet"},
            code_version="1",
            description=(
                "One row per post id (the later file, then the later line, wins): id, caption and "
                "where the caption came from (`summary`, `tags` or `empty`), by the dataset card's "
                "rule. `rearranged/NNNN.parquet`."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "caption_counts",
            asset=REARRANGED_CAPTIONS,
            partitions_def=SHARDS,
            description=(
                "Counts the shard's rows, captions from summaries, fallbacks to tags, empty captions "
                "and duplicates dropped. WARN when any post has an empty caption: it gets no member "
                "in the tar and trains without a caption."
            ),
        )
    ],
    can_subset=True,  # makes the check output optional: its results are yielded per shard below
    **_PER_SHARD,
)
def rearranged_captions(context: dg.AssetExecutionContext, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    keys = context.partition_keys
    versions: dict[str, str] = {}
    checks: list[dg.AssetCheckEvaluation] = []
    for done, key in enumerate(keys, start=1):
        rows, duplicates = latest_row_per_id(pq.read_table(layout.raw(key)))
        captions = rearrange(rows)
        versions[key] = table_version(captions)
        counts = count_captions(captions, duplicates)
        captions = captions.replace_schema_metadata({_COUNTS_KEY: json.dumps(counts.as_dict()).encode()})
        _write_parquet(layout.rearranged(key), captions)
        numbers = counts.as_dict()
        context.add_asset_metadata(
            {**numbers, "path": dg.MetadataValue.path(str(layout.rearranged(key)))}, partition_key=key
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
        _progress(context, done, len(keys))
    yield dg.MaterializeResult(asset_key=REARRANGED_CAPTIONS)
    yield from _aimed_at_latest(context.instance, REARRANGED_CAPTIONS, checks)
    yield from content_version_events(REARRANGED_CAPTIONS, versions)


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
    **_PER_SHARD,
)
def caption_tars(context: dg.AssetExecutionContext, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    keys = context.partition_keys
    versions: dict[str, str] = {}
    checks: list[dg.AssetCheckEvaluation] = []
    for done, key in enumerate(keys, start=1):
        captions = pq.read_table(layout.rearranged(key), columns=["id", "caption"])
        captions = captions.filter(pc.not_equal(captions.column("caption"), ""))
        members = (
            (f"{post_id}.caption", caption.encode())
            for post_id, caption in zip(
                captions.column("id").to_pylist(), captions.column("caption").to_pylist(), strict=True
            )
        )
        tar_path, index_path = layout.tar(key), layout.tar_index(key)
        write_tar(tar_path, index_path, members)
        index = TarIndex.from_json(index_path.read_bytes())
        versions[key] = index.hash_lfs  # the tar's sha256
        problems = index_problems(tar_path, index)
        if len(index.files) != captions.num_rows:
            problems.insert(0, f"{len(index.files)} members for {captions.num_rows} non-empty captions")
        context.add_asset_metadata(
            {
                "members": len(index.files),
                "tar_bytes": index.filesize,
                "sha256": index.hash_lfs,
                "path": dg.MetadataValue.path(str(tar_path)),
            },
            partition_key=key,
        )
        checks.append(
            dg.AssetCheckEvaluation(
                asset_key=CAPTION_TARS,
                check_name="tar_matches_captions",
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                blocking=True,
                metadata={
                    "members": len(index.files),
                    "non_empty_captions": captions.num_rows,
                    "problems": "; ".join(problems) or "none",
                },
                partition=key,
            )
        )
        _progress(context, done, len(keys))
    yield dg.MaterializeResult(asset_key=CAPTION_TARS)
    yield from _aimed_at_latest(context.instance, CAPTION_TARS, checks)
    yield from content_version_events(CAPTION_TARS, versions)


@dg.asset(
    key=META_CAP_FRAGMENTS,
    automation_condition=rebuild_on_change(),
    deps=[REARRANGED_CAPTIONS],
    group_name="captions",
    kinds={"parquet"},
    code_version="1",
    description=(
        "Each shard's entries of meta_cap.json, ascending id, already serialised: the merged file "
        "is a streaming k-way merge of these. `meta_cap/NNNN.parquet`."
    ),
    **_PER_SHARD,
)
def meta_cap_fragments(context: dg.AssetExecutionContext, data_dir: DataDir) -> Iterator:
    layout = data_dir.layout()
    keys = context.partition_keys
    versions: dict[str, str] = {}
    for done, key in enumerate(keys, start=1):
        captions = pq.read_table(layout.rearranged(key))
        fragment = caption_entries(captions.column("id"), captions.column("caption"))
        fragment = fragment.append_column("caption_source", captions.column("caption_source"))
        write_fragment(layout.meta_cap_fragment(key), fragment)
        versions[key] = table_version(fragment)
        context.add_asset_metadata({"entries": fragment.num_rows}, partition_key=key)
        _progress(context, done, len(keys))
    yield dg.MaterializeResult()
    yield from content_version_events(META_CAP_FRAGMENTS, versions)


@dg.asset(
    key=META_CAP,
    deps=[dg.AssetDep(META_CAP_FRAGMENTS, partition_mapping=dg.AllPartitionMapping())],
    group_name="captions",
    kinds={"json"},
    code_version="1",
    automation_condition=rebuild_on_change(),
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
    missing = layout.missing_fragments()
    if missing:
        raise dg.Failure(
            description=f"{len(missing)} shards have no meta_cap fragment yet (first: {missing[0]}); "
            "materialize every shard before the merged file."
        )
    fragments = [layout.meta_cap_fragment(key) for key in SHARD_KEYS]
    entries = merge_fragments(fragments, layout.meta_cap_json)
    write_tar_gz(layout.meta_cap_json, layout.meta_cap_tar_gz)

    shard_totals = sum((read_counts(layout.rearranged(key)) for key in SHARD_KEYS), CaptionCounts())
    sources = pa.concat_tables(pq.read_table(path, columns=["caption_source"]) for path in fragments)
    by_source = {v["values"]: v["counts"] for v in pc.value_counts(sources.column(0)).to_pylist()}
    merged = {
        "rows": entries,
        "from_summary": by_source.get("summary", 0),
        "from_tags": by_source.get("tags", 0),
        "empty": by_source.get("empty", 0),
    }
    expected = {name: getattr(shard_totals, name) for name in merged}
    context.log.info(
        f"meta_cap.json: {entries} entries, {merged['empty']} empty, {merged['from_tags']} from tags"
    )
    return dg.MaterializeResult(
        metadata={
            **merged,
            "duplicates_dropped": shard_totals.duplicates_dropped,
            "json_bytes": layout.meta_cap_json.stat().st_size,
            "tar_gz_bytes": layout.meta_cap_tar_gz.stat().st_size,
            "path": dg.MetadataValue.path(str(layout.meta_cap_json)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="totals_match_shards",
                passed=merged == expected,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    **{f"merged_{k}": v for k, v in merged.items()},
                    **{f"shards_{k}": v for k, v in expected.items()},
                },
            )
        ],
    )


PER_SHARD_CAPTION_ASSETS = [raw_captions, rearranged_captions, caption_tars, meta_cap_fragments]
MERGED_CAPTION_ASSETS = [meta_cap]
CAPTION_ASSETS = [*PER_SHARD_CAPTION_ASSETS, *MERGED_CAPTION_ASSETS]
