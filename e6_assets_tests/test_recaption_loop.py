"""The recaption loop through Dagster: a captioner's output for a few hundred posts of six shards lands
in the overrides folder; observing it records new versions for those six shards only; the automation
requests exactly those; after they are rebuilt their tars and JSON carry the new captions, and every
other byte of the build is what it was."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.sample import write_sample
from e6_assets.core.shards import SHARD_KEYS, shard_key
from e6_assets.core.sources import resolve_local
from e6_assets.defs.assets import ALL_ASSETS, RECAPTION_ASSETS
from e6_assets.defs.automation.schedules import observe_caption_overrides
from e6_assets.defs.captions.assets import CAPTION_TARS, META_CAP, RAW_CAPTIONS, REARRANGED_CAPTIONS
from e6_assets.defs.recaption.assets import RECAPTION_QUEUE
from e6_assets.defs.resources import CaptionSource, DataDir, IdUniverse, Recaption
from e6_assets_tests.cli_process import output_files
from e6_assets_tests.conftest import range_tags
from e6_assets_tests.reference import card_caption, latest_rows

ROWS = 40_000  # about 40 posts per shard
RECAPTIONED = SHARD_KEYS[40:46]  # the shards the captioner's output covers
PER_SHARD = [RAW_CAPTIONS, REARRANGED_CAPTIONS, CAPTION_TARS, RECAPTION_QUEUE]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DataLayout]:
    """A 40,000-row sample and its whole build, by the plain pipeline, without overrides."""
    source = tmp_path_factory.mktemp("source-40k")
    write_sample(source, rows=ROWS, jobs=2)
    layout = DataLayout(tmp_path_factory.mktemp("reference") / "data")
    pipeline.build(resolve_local(source), layout, workers=2)
    return source, layout


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def captioner_output(folder: Path, source: dict[int, dict]) -> dict[int, tuple[str, str]]:
    """What two GPUs (ids split % 2) and a later file of fixes return for every post of RECAPTIONED;
    returns the caption and model each post ends up with."""
    folder.mkdir()
    posts = sorted(post_id for post_id in source if shard_key(post_id) in RECAPTIONED)
    final = {
        post_id: (f"A fox, post {post_id}, seen by gpu {post_id % 2}.", f"vlm-gpu{post_id % 2}")
        for post_id in posts
    }
    for gpu in (0, 1):
        rows = [
            {"id": post_id, "caption": caption.replace("fox,", "fox,\n"), "model": model}
            for post_id, (caption, model) in final.items()
            if post_id % 2 == gpu
        ]
        _jsonl(folder / f"gpu-{gpu}.jsonl", rows)
    fixed = posts[::50]
    _jsonl(
        folder / "z-fixes.jsonl",
        [{"id": post_id, "caption": f"Fixed {post_id}.", "model": "fixer"} for post_id in fixed],
    )
    final.update({post_id: (f"Fixed {post_id}.", "fixer") for post_id in fixed})
    return final


class Loop:
    def __init__(self, source: Path, data: Path, overrides: Path):
        self.resources = {
            "source": CaptionSource(spec=str(source)),
            "data_dir": DataDir(path=str(data)),
            "id_universe": IdUniverse(),
            "recaption": Recaption(overrides=str(overrides)),
        }
        self.defs = dg.Definitions(
            assets=[*ALL_ASSETS, *RECAPTION_ASSETS],
            jobs=[observe_caption_overrides],
            resources=self.resources,
        )

    def observe(self, instance: dg.DagsterInstance) -> list[str]:
        """Observe caption_overrides; the shards that got a new data version."""
        result = self.defs.resolve_job_def(observe_caption_overrides.name).execute_in_process(
            instance=instance
        )
        assert result.success
        return sorted(
            event.event_specific_data.asset_observation.partition
            for event in result.all_events
            if event.event_type_value == "ASSET_OBSERVATION"
        )

    def materialize(self, selection: list, instance: dg.DagsterInstance, tags: dict | None = None):
        result = dg.materialize(
            [*ALL_ASSETS, *RECAPTION_ASSETS],
            selection=selection,
            instance=instance,
            resources=self.resources,
            tags=tags or {},
        )
        assert result.success
        return result


def requested(tick: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str]]:
    return {
        key.to_user_string(): sorted(tick.get_requested_partitions(key))
        for key in PER_SHARD
        if tick.get_requested_partitions(key)
    }


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        for key in (RAW_CAPTIONS, REARRANGED_CAPTIONS, CAPTION_TARS):  # the build, as recorded
            for shard in SHARD_KEYS:
                ephemeral.report_runless_asset_event(dg.AssetMaterialization(key, partition=shard))
        yield ephemeral


def _tar_captions(path: Path) -> dict[int, str]:
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as archive:
        return {
            int(member.name.removesuffix(".caption")): archive.extractfile(member).read().decode()
            for member in archive.getmembers()
        }


def test_new_overrides_rebuild_only_their_shards_whose_files_carry_them_and_nothing_else_changes(
    reference: tuple[Path, DataLayout], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    source_dir, built = reference
    shutil.copytree(built.root, tmp_path / "data")
    layout = DataLayout(tmp_path / "data")
    source = latest_rows(source_dir)
    final = captioner_output(tmp_path / "overrides", source)
    assert len(final) >= 200
    loop = Loop(source_dir, layout.root, tmp_path / "overrides")

    tick = dg.evaluate_automation_conditions(defs=loop.defs, instance=instance)
    assert tick.total_requested == 0
    assert loop.observe(instance) == RECAPTIONED
    tick = dg.evaluate_automation_conditions(defs=loop.defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {
        "rearranged_captions": RECAPTIONED,
        "caption_tars": RECAPTIONED,
        "recaption_queue": RECAPTIONED,
    }

    # What the sensor's backfill runs: the contiguous shards as one ranged run; then the merge.
    result = loop.materialize(
        [REARRANGED_CAPTIONS, CAPTION_TARS], instance, range_tags(RECAPTIONED[0], RECAPTIONED[-1])
    )
    counts = {
        event.partition: event.event_specific_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == REARRANGED_CAPTIONS
    }
    for shard in RECAPTIONED:
        in_shard = [post_id for post_id in final if shard_key(post_id) == shard]
        assert counts[shard]["from_override"].value == len(in_shard)
        models = {}
        for post_id in in_shard:
            models[final[post_id][1]] = models.get(final[post_id][1], 0) + 1
        assert counts[shard]["override_models"].value == models
    merged = loop.materialize([META_CAP], instance)
    [check] = merged.get_asset_check_evaluations()
    assert check.passed
    [materialization] = merged.asset_materializations_for_node("meta_cap")
    assert materialization.metadata["from_override"].value == len(final)

    # The six shards' tars hold the new captions; every other caption is the card's.
    for shard in RECAPTIONED:
        expected = {post_id: final[post_id][0] for post_id in source if shard_key(post_id) == shard}
        assert _tar_captions(layout.tar(shard)) == expected
    meta_cap = json.loads(layout.meta_cap_json.read_bytes())
    assert meta_cap == {
        str(post_id): {"caption": final[post_id][0] if post_id in final else card_caption(source[post_id])}
        for post_id in sorted(source)
    }

    before, after = output_files(built.root), output_files(layout.root)
    changed = {name for name in before if before[name] != after.get(name)}
    per_shard = {
        f"{folder}/{shard}.{ext}"
        for shard in RECAPTIONED
        for folder, ext in (
            ("rearranged", "parquet"),
            ("meta_cap", "arrow"),
            ("captions", "tar"),
            ("captions", "json"),
        )
    }
    assert changed == per_shard | {"meta_cap.json", "meta_cap.tar.gz"}
    assert set(after) - set(before) == {f"overrides/{shard}.parquet" for shard in RECAPTIONED}

    # Observing again with nothing new records and requests nothing.
    for key in (REARRANGED_CAPTIONS, CAPTION_TARS, RECAPTION_QUEUE):
        for shard in RECAPTIONED:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=shard))
    tick = dg.evaluate_automation_conditions(defs=loop.defs, instance=instance, cursor=tick.cursor)
    assert loop.observe(instance) == []
    tick = dg.evaluate_automation_conditions(defs=loop.defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {}

    # Taking the fixes back out changes the shards they were in, and only those.
    (tmp_path / "overrides" / "z-fixes.jsonl").unlink()
    fixed_shards = sorted({shard_key(post_id) for post_id, (_, model) in final.items() if model == "fixer"})
    assert loop.observe(instance) == fixed_shards
    tick = dg.evaluate_automation_conditions(defs=loop.defs, instance=instance, cursor=tick.cursor)
    assert requested(tick)["rearranged_captions"] == fixed_shards
