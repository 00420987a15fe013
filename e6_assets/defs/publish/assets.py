"""The release on the Hub: ``hub_release`` publishes the built dataset to ``E6_PUBLISH_REPO``.

A materialization is a **dry run** unless its run config says ``publish: true``: it lists the Hub
repo, compares it with the build and records the plan (files to add, update and delete, bytes,
commits) as metadata, changing nothing on the Hub. With ``publish: true`` it then commits the plan
and records the commit it published. It has no automation condition: publishing is always asked for.
The data work is in ``e6_assets.core.publish`` and ``e6_assets.core.dataset_card``.
"""

from collections.abc import Iterator

import dagster as dg
from huggingface_hub.errors import HfHubHTTPError
from pydantic import Field

from e6_assets.core import publish
from e6_assets.core.dataset_card import Provenance, source_of
from e6_assets.defs.captions.assets import CAPTION_TARS, META_CAP, RAW_CAPTIONS
from e6_assets.defs.merge.assets import META_LAT_V2
from e6_assets.defs.per_shard import SHARD_POOL
from e6_assets.defs.resources import DataDir, HubPublishTarget, IdUniverse

HUB_RELEASE = dg.AssetKey("hub_release")

NOT_CONFIGURED = (
    "E6_PUBLISH_REPO is not set: there is no Hub repo to publish to. Set it to a dataset repo "
    "(OWNER/NAME), and HF_TOKEN to a token that can write to it."
)


class PublishConfig(dg.Config):
    publish: bool = Field(
        default=False,
        description=(
            "false (the default): a dry run, which records the plan and changes nothing on the Hub. "
            "true: commit the plan to the Hub."
        ),
    )


def recorded_provenance(instance: dg.DagsterInstance) -> Provenance:
    """The sources the shards' current ``raw_captions`` were built from, as their materializations
    recorded them (the Hub commit for a Hub source)."""
    latest = instance.get_latest_storage_id_by_partition(
        RAW_CAPTIONS, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    if not latest:
        return Provenance()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_CAPTIONS, storage_ids=list(latest.values())), limit=len(latest)
    ).records
    return Provenance.of_shards(
        source_of({key: value.value for key, value in record.asset_materialization.metadata.items()})
        for record in records
    )


@dg.asset(
    key=HUB_RELEASE,
    deps=[
        dg.AssetDep(CAPTION_TARS, partition_mapping=dg.AllPartitionMapping()),
        META_CAP,
        META_LAT_V2,  # published only when E6_ID_UNIVERSE is set
    ],
    group_name="publish",
    kinds={"huggingface"},
    # Not while a run writes shards: the release is read as one consistent build.
    pool=SHARD_POOL,
    output_required=False,  # nothing is recorded when E6_PUBLISH_REPO is not set
    description=(
        "The dataset on the Hugging Face Hub (E6_PUBLISH_REPO): the 1000 tars and their indexes under "
        "`captions/`, meta_cap.tar.gz (and meta_lat_v2.tar.gz, missing.json with an id universe) and a "
        "generated dataset card. A dry run unless the run config sets `publish: true`; only what changed "
        "is committed, each tar with its index."
    ),
)
def hub_release(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    publish_target: HubPublishTarget,
    data_dir: DataDir,
    id_universe: IdUniverse,
) -> Iterator[dg.MaterializeResult]:
    try:
        target = publish_target.target()
    except ValueError as error:
        raise dg.Failure(description=str(error)) from error
    if target is None:
        context.log.warning(NOT_CONFIGURED)
        return
    provenance = recorded_provenance(context.instance)
    api = publish.hub_api(target)
    try:
        plan = publish.plan_release(api, target, data_dir.layout(), provenance, id_universe.configured)
        context.log.info(f"{'publish' if config.publish else 'dry run'}:\n{plan.describe()}")
        result = publish.publish(api, plan, context.log.info) if config.publish else None
    except publish.PublishError as error:
        raise dg.Failure(description=str(error)) from error
    except HfHubHTTPError as error:
        raise dg.Failure(description=f"the Hub refused: {error}") from error
    mode = "up to date" if not plan.changes else "dry run" if result is None else "published"
    yield dg.MaterializeResult(
        metadata={
            "mode": mode,
            **plan.metadata(),
            **(result.metadata() if result else {}),
            "source": "\n".join(provenance.lines()),
            "plan": dg.MetadataValue.text(plan.describe()),
        }
    )


PUBLISH_ASSETS = [hub_release]
