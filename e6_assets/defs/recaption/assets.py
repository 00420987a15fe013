"""The recaption loop: caption_overrides -> rearranged_captions; recaption_queue -> recaption_lists.

``caption_overrides`` is an observable source asset, one partition per shard, set by
``E6_CAPTION_OVERRIDES``: observing it stages the folder's overrides per shard and records a data
version only for the shards whose overrides changed, so only those shards are rebuilt.
``recaption_queue`` holds, per shard, the posts whose caption is only tags (or nothing);
``recaption_lists`` splits it into the K work lists a user hands to K captioners. The data work is in
``e6_assets.core.overrides`` and ``e6_assets.core.recaption``.

These assets use the ``recaption`` resource, so they join the code location in ``definitions`` (as
``hub_release`` does): code that lists ``ALL_ASSETS`` with its own resources keeps working, and
``rearranged_captions``' dependency on ``caption_overrides`` is then an external asset.
"""

from collections.abc import Iterator

import dagster as dg

from e6_assets.core.jsonl import SourceError
from e6_assets.core.overrides import OverrideError, changed_versions, stage_overrides
from e6_assets.core.pipeline import stage
from e6_assets.core.recaption import MissingQueues, export_work_lists, write_queues
from e6_assets.core.sources import SourceNotFound
from e6_assets.core.universe import UniverseError, stage_universe
from e6_assets.defs.automation.conditions import rebuild_on_change
from e6_assets.defs.captions.assets import CAPTION_OVERRIDES, REARRANGED_CAPTIONS, _aimed_at_latest
from e6_assets.defs.merge.assets import ID_UNIVERSE
from e6_assets.defs.partitions import SHARDS
from e6_assets.defs.per_shard import PER_SHARD, SHARD_POOL, StepProgress
from e6_assets.defs.resources import CaptionSource, DataDir, IdUniverse, Recaption
from e6_assets.defs.versions import latest_versions

RECAPTION_QUEUE = dg.AssetKey("recaption_queue")
RECAPTION_LISTS = dg.AssetKey("recaption_lists")

OVERRIDES_NOT_CONFIGURED = (
    "E6_CAPTION_OVERRIDES is not set: no caption overrides. Set it to a folder of JSONL files "
    '{"id": ..., "caption": ..., "model": ...} to lay a captioner\'s output over the captions.'
)


@dg.observable_source_asset(
    key=CAPTION_OVERRIDES,
    partitions_def=SHARDS,
    group_name="recaption",
    description=(
        "Captions from a captioner, laid over the dataset card's: the JSONL files "
        '({"id", "caption", "model"}) of the folder E6_CAPTION_OVERRIDES names; the later file, then '
        "the later line, wins; empty captions are dropped. Observing it validates every file (a bad "
        "line fails with file:line), stages the overrides per shard (`overrides/NNNN.parquet`) and "
        "records a data version for each shard whose overrides changed: only those are rebuilt."
    ),
)
def caption_overrides(
    context: dg.AssetExecutionContext, recaption: Recaption, data_dir: DataDir
) -> dg.DataVersionsByPartition:
    folder = recaption.overrides_folder
    if folder is None:
        context.log.info(OVERRIDES_NOT_CONFIGURED)
    try:
        staging = stage_overrides(folder, data_dir.layout())
    except OverrideError as error:
        raise dg.Failure(description=str(error)) from error
    changed = changed_versions(latest_versions(context.instance, CAPTION_OVERRIDES), staging.versions)
    context.log.info(
        f"caption overrides: {staging.overrides} posts in {len(staging.versions)} shards from "
        f"{staging.files} files; {len(changed)} shards changed"
    )
    return dg.DataVersionsByPartition({key: dg.DataVersion(version) for key, version in changed.items()})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RECAPTION_QUEUE,
            deps=[REARRANGED_CAPTIONS, ID_UNIVERSE],
            group_name="recaption",
            automation_condition=rebuild_on_change(),
            kinds={"parquet"},
            code_version="1",
            description=(
                "The posts of each shard whose caption is only tags or empty, to caption again: with "
                "E6_ID_UNIVERSE set, the universe's posts among them and those with no caption row "
                "(missing.json's caption list). id, reason (tags, empty, no_caption), the current "
                "caption, the tags and, from the source row, md5, file_ext and file_url. "
                "`recaption_queue/NNNN.parquet`."
            ),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "tag_only_share",
            asset=RECAPTION_QUEUE,
            partitions_def=SHARDS,
            description=(
                "The share of the shard's captions that come from the tags. WARN when it is above "
                "E6_TAG_ONLY_WARN (resource field tag_only_warn, default 0.25)."
            ),
        )
    ],
    can_subset=True,  # makes the check output optional: its results are yielded per shard below
    **PER_SHARD,
)
def recaption_queue(
    context: dg.AssetExecutionContext,
    source: CaptionSource,
    data_dir: DataDir,
    id_universe: IdUniverse,
    recaption: Recaption,
) -> Iterator:
    layout = data_dir.layout()
    threshold = recaption.tag_only_warn_fraction
    workers = data_dir.worker_count()
    try:
        resolved = source.resolve(layout.root)
        stage(resolved, layout, workers)  # the staged copy gives each row's line in its source file
        universe = None
        if id_universe.configured:
            universe = stage_universe(id_universe.resolve(layout.root).path, layout.universe_stage_dir).staged
    except (SourceError, SourceNotFound, UniverseError, OSError) as error:
        raise dg.Failure(description=str(error)) from error
    missing = [key for key in context.partition_keys if not layout.rearranged(key).exists()]
    if missing:
        raise dg.Failure(description=f"shard {missing[0]} has no rearranged captions yet: build it first")
    keys = context.partition_keys
    checks: list[dg.AssetCheckEvaluation] = []
    with StepProgress(context, len(keys)) as progress:
        for key, counts in write_queues(layout, resolved.files, keys, universe, workers):
            share = round(counts.tag_only_share, 6)
            numbers = {**counts.as_dict(), "tag_only_share": share}
            context.add_asset_metadata(
                {**numbers, "path": dg.MetadataValue.path(str(layout.recaption_queue(key)))},
                partition_key=key,
            )
            checks.append(
                dg.AssetCheckEvaluation(
                    asset_key=RECAPTION_QUEUE,
                    check_name="tag_only_share",
                    passed=share <= threshold,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={**numbers, "warn_above_share": threshold},
                    partition=key,
                )
            )
            progress.advance(counts.queued)
    yield dg.MaterializeResult(
        asset_key=RECAPTION_QUEUE,
        metadata={"universe": universe.sha256 if universe else "none", "source": resolved.description},
    )
    yield from _aimed_at_latest(context.instance, RECAPTION_QUEUE, checks)


@dg.asset(
    key=RECAPTION_LISTS,
    deps=[dg.AssetDep(RECAPTION_QUEUE, partition_mapping=dg.AllPartitionMapping())],
    group_name="recaption",
    kinds={"jsonl"},
    pool=SHARD_POOL,  # never reads the queues while a run writes them
    description=(
        "The recaption queue of all 1000 shards as K work lists, `recaption/work-I-of-K.jsonl` (K: "
        "E6_RECAPTION_LISTS, default 8; a post goes to list id % K): one JSON object per post, "
        "with its shard, reason, current caption, tags and image location. Built on request (the "
        "export), not by the automation: lists handed to captioners do not change under them."
    ),
)
def recaption_lists(context: dg.AssetExecutionContext, data_dir: DataDir, recaption: Recaption):
    layout = data_dir.layout()
    count = recaption.work_list_count
    try:
        lists = export_work_lists(layout, count)
    except MissingQueues as error:
        raise dg.Failure(description=str(error)) from error
    context.log.info(
        f"recaption work lists: {lists.total} posts in {count} lists under {layout.recaption_lists_dir}"
    )
    return dg.MaterializeResult(
        metadata={
            "lists": count,
            "queued": lists.total,
            **{f"list_{index:02d}": posts for index, posts in enumerate(lists.counts)},
            "path": dg.MetadataValue.path(str(layout.recaption_lists_dir)),
        }
    )


RECAPTION_ASSETS = [caption_overrides, recaption_queue, recaption_lists]
