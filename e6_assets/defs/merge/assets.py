"""The merge with the posts that have images: id_universe -> meta_lat_v2 fragments -> meta_lat_v2.json.

``id_universe`` is an observable source asset (data version: the file's sha256), set by
``E6_ID_UNIVERSE``. When it is not set, both merge assets skip with a message and nothing else in
the graph changes. The data work lives in ``e6_assets.core.universe`` and ``e6_assets.core.merge``.
"""

from collections.abc import Iterator

import dagster as dg

from e6_assets.core.merge import MergeInputError, merge_meta_lat, merge_universe_shards
from e6_assets.core.sources import SourceNotFound
from e6_assets.core.universe import UniverseError, file_sha256, stage_universe
from e6_assets.defs.captions.assets import REARRANGED_CAPTIONS
from e6_assets.defs.partitions import SHARDS
from e6_assets.defs.per_shard import PER_SHARD, StepProgress
from e6_assets.defs.resources import DataDir, IdUniverse

ID_UNIVERSE = dg.AssetKey("id_universe")
META_LAT_V2_FRAGMENTS = dg.AssetKey("meta_lat_v2_fragments")
META_LAT_V2 = dg.AssetKey("meta_lat_v2")

NOT_CONFIGURED = (
    "E6_ID_UNIVERSE is not set: skipping the merge with the posts that have images. Set it to a "
    "meta_lat.json (or .tar.gz) path, hf://datasets/OWNER/REPO/PATH[@REV], or sample[:ROWS]."
)


def _resolve(id_universe: IdUniverse, data_dir: DataDir):
    try:
        return id_universe.resolve(data_dir.layout().root)
    except (SourceNotFound, OSError) as error:
        raise dg.Failure(description=f"id universe: {error}") from error


@dg.observable_source_asset(
    key=ID_UNIVERSE,
    group_name="merge",
    description=(
        "The posts that have images and latents: kohya's meta_lat.json "
        '({"<id>": {"tags": ..., "train_resolution": [w, h]}}), from E6_ID_UNIVERSE (a local file, '
        "a .tar.gz holding it, a file in a Hub dataset repo, or the synthetic sample). "
        "Data version: the file's sha256."
    ),
)
def observe_id_universe(
    context: dg.AssetExecutionContext, id_universe: IdUniverse, data_dir: DataDir
) -> dg.ObserveResult:
    if not id_universe.configured:
        context.log.warning(NOT_CONFIGURED)
        return dg.ObserveResult(data_version=dg.DataVersion("unset"), metadata={"status": NOT_CONFIGURED})
    resolved = _resolve(id_universe, data_dir)
    sha256 = file_sha256(resolved.path)
    return dg.ObserveResult(
        data_version=dg.DataVersion(sha256),
        metadata={
            "universe": resolved.description,
            "synthetic": resolved.synthetic,
            "sha256": sha256,
            "bytes": resolved.path.stat().st_size,
            **resolved.metadata,
        },
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            META_LAT_V2_FRAGMENTS,
            deps=[REARRANGED_CAPTIONS, ID_UNIVERSE],
            group_name="merge",
            kinds={"arrow"},
            code_version="2",
            skippable=True,  # skipped when E6_ID_UNIVERSE is not set
            description=(
                "Each shard's part of meta_lat_v2.json: for every universe id in the shard, ascending, "
                "tags, caption (falling back to the tags) and train_resolution, each only when it has a "
                "value, already serialised; plus flags for the ids missing tags, caption or latent. "
                "`meta_lat_v2/NNNN.arrow`."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "missing_captions",
            asset=META_LAT_V2_FRAGMENTS,
            partitions_def=SHARDS,
            description=(
                "Counts the shard's universe ids with no (or an empty) caption, with the ids missing "
                "tags and latents alongside. WARN when the fraction without a caption exceeds "
                "E6_MISSING_CAPTION_WARN (resource field missing_caption_warn, default 0.05)."
            ),
        )
    ],
    can_subset=True,  # makes the check output optional: its results are yielded per shard below
    **PER_SHARD,
)
def meta_lat_v2_fragments(
    context: dg.AssetExecutionContext, id_universe: IdUniverse, data_dir: DataDir
) -> Iterator:
    if not id_universe.configured:
        context.log.warning(NOT_CONFIGURED)
        return
    layout = data_dir.layout()
    resolved = _resolve(id_universe, data_dir)
    threshold = id_universe.missing_caption_warn_fraction
    try:
        staging = stage_universe(resolved.path, layout.universe_stage_dir)
    except UniverseError as error:
        raise dg.Failure(description=str(error)) from error
    staged = staging.staged
    context.log.info(
        f"id universe: {resolved.description}, {staged.entries} entries, sha256 {staged.sha256[:12]} "
        f"({'parsed and staged' if staging.parsed else 'staged copy reused'})"
    )
    keys = context.partition_keys
    with StepProgress(context, len(keys)) as progress:
        for key, counts in merge_universe_shards(layout, staged, keys):
            fraction = counts.missing_caption / counts.ids if counts.ids else 0.0
            numbers = {**counts.as_dict(), "missing_caption_fraction": round(fraction, 6)}
            context.add_asset_metadata(
                {**numbers, "path": dg.MetadataValue.path(str(layout.meta_lat_fragment(key)))},
                partition_key=key,
            )
            yield dg.AssetCheckEvaluation(
                asset_key=META_LAT_V2_FRAGMENTS,
                check_name="missing_captions",
                passed=fraction <= threshold,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={**numbers, "warn_above_fraction": threshold},
                partition=key,
            )
            progress.advance(counts.ids)
    yield dg.MaterializeResult(
        asset_key=META_LAT_V2_FRAGMENTS,
        metadata={
            "universe": resolved.description,
            "universe_sha256": staged.sha256,
            "synthetic_universe": resolved.synthetic,
        },
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            META_LAT_V2,
            deps=[dg.AssetDep(META_LAT_V2_FRAGMENTS, partition_mapping=dg.AllPartitionMapping())],
            group_name="merge",
            kinds={"json"},
            code_version="1",
            skippable=True,  # skipped when E6_ID_UNIVERSE is not set
            description=(
                '`meta_lat_v2.json` for kohya sd-scripts: {"<id>": {"tags", "caption", '
                '"train_resolution"}} for every id of the universe, keys ascending by id; and '
                '`missing.json`: {"tags": [...], "caption": [...], "latent": [...]}, string ids '
                "ascending. Metadata: the dataset card's summary line. Built from all 1000 shards."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "totals_match_shards",
            asset=META_LAT_V2,
            description=(
                "The merged files' totals (ids written, ids in each missing list) equal the sums of "
                "the 1000 shards' missing_captions figures, and every shard was built from one "
                "universe version. ERROR when they differ."
            ),
        )
    ],
    can_subset=True,
)
def meta_lat_v2(context: dg.AssetExecutionContext, id_universe: IdUniverse, data_dir: DataDir) -> Iterator:
    if not id_universe.configured:
        context.log.warning(NOT_CONFIGURED)
        return
    layout = data_dir.layout()
    try:
        result = merge_meta_lat(layout, data_dir.worker_count())
    except MergeInputError as error:
        raise dg.Failure(description=str(error)) from error
    merged, shard_totals = result.merged, result.shards
    summary = merged.summary_line()
    context.log.info(summary)
    yield dg.MaterializeResult(
        asset_key=META_LAT_V2,
        metadata={
            "summary": summary,
            **merged.as_dict(),
            "universe_sha256": result.universe_sha256,
            "json_bytes": layout.meta_lat_v2_json.stat().st_size,
            "path": dg.MetadataValue.path(str(layout.meta_lat_v2_json)),
            "missing_path": dg.MetadataValue.path(str(layout.missing_json)),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=META_LAT_V2,
        check_name="totals_match_shards",
        passed=merged == shard_totals,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **{f"merged_{k}": v for k, v in merged.as_dict().items()},
            **{f"shards_{k}": v for k, v in shard_totals.as_dict().items()},
        },
    )


PER_SHARD_MERGE_ASSETS = [meta_lat_v2_fragments]
MERGED_MERGE_ASSETS = [meta_lat_v2]
MERGE_ASSETS = [observe_id_universe, *PER_SHARD_MERGE_ASSETS, *MERGED_MERGE_ASSETS]


def summary_of(result: dg.ExecuteInProcessResult) -> str | None:
    """The summary line of a run that materialized meta_lat_v2, if it did."""
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key == META_LAT_V2:
            return event.materialization.metadata["summary"].value
    return None
