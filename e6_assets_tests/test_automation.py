"""Declarative automation over the observed source: only changed shards are requested, then the
merged asset once; unchanged observations request nothing; code_version bumps request every shard;
failed blocking checks hold back their downstream; the fill schedule asks for few ranged runs."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from e6_assets.core.shards import SHARD_KEYS
from e6_assets.defs.assets import ALL_ASSETS, PER_SHARD_ASSETS
from e6_assets.defs.automation.conditions import rebuild_on_change
from e6_assets.defs.automation.schedules import (
    FILL_SCHEDULE,
    build_fill_schedule,
    fill_requests,
    observe_source,
    shard_ranges,
)
from e6_assets.defs.captions.assets import (
    CAPTION_TARS,
    META_CAP,
    RAW_CAPTIONS,
    REARRANGED_CAPTIONS,
    caption_tars,
)
from e6_assets.defs.jobs import build_shards
from e6_assets.defs.partitions import SHARDS
from e6_assets.defs.resources import CaptionSource, DataDir, IdUniverse
from e6_assets.defs.versions import DATA_VERSION_TAG
from e6_assets_tests.conftest import change_one_caption, range_tags

PER_SHARD_KEYS = [RAW_CAPTIONS, REARRANGED_CAPTIONS, CAPTION_TARS]


BUILT = SHARD_KEYS[:8]  # shards built for real in each test; the rest are recorded without files


NOT_BUILT = {RAW_CAPTIONS: [*SHARD_KEYS[100:200], "0500"], CAPTION_TARS: SHARD_KEYS[150:250]}


@dataclass
class State:
    """A source folder, a data root and the resources that point at them."""

    source: Path
    data: Path

    def resources(self) -> dict[str, dg.ConfigurableResource]:
        return {
            "source": CaptionSource(spec=str(self.source)),
            "data_dir": DataDir(path=str(self.data)),
            "id_universe": IdUniverse(),  # not configured: the merge assets skip
        }

    def defs(self, assets: list | None = None) -> dg.Definitions:
        return dg.Definitions(
            assets=assets or ALL_ASSETS, jobs=[observe_source, build_shards], resources=self.resources()
        )

    def observe(self, instance: dg.DagsterInstance) -> int:
        """Observe the source; returns the number of shards that got a new data version."""
        result = self.defs().resolve_job_def(observe_source.name).execute_in_process(instance=instance)
        assert result.success
        return len([e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"])

    def build(self, instance: dg.DagsterInstance, first: str, last: str) -> None:
        result = dg.materialize(
            ALL_ASSETS,
            selection=PER_SHARD_ASSETS,
            instance=instance,
            resources=self.resources(),
            tags=range_tags(first, last),
        )
        assert result.success


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path
) -> Iterator[tuple[State, dg.DagsterInstance]]:
    """Built once per module (recording events is the slow part): the source observed, shards BUILT
    built by a real run, every other shard recorded as built (materializations without files: what
    the automation conditions read) except the shards in NOT_BUILT, and meta_cap built.

    Tests share it and must leave it as they found it, apart from changes that the next test's
    first automation tick absorbs (a first tick sees no updates).
    """
    root = tmp_path_factory.mktemp("automation")
    state = State(root / "source", root / "data")
    shutil.copytree(sample_dir, state.source)
    with dg.DagsterInstance.ephemeral() as ephemeral:
        assert state.observe(ephemeral) == len(SHARD_KEYS)
        state.build(ephemeral, BUILT[0], BUILT[-1])
        for key in PER_SHARD_KEYS:
            shards = [s for s in SHARD_KEYS[len(BUILT) :] if s not in NOT_BUILT.get(key, ())]
            record_built(ephemeral, [key], shards)
        ephemeral.report_runless_asset_event(dg.AssetMaterialization(META_CAP))
        yield state, ephemeral


@pytest.fixture
def state(shared: tuple[State, dg.DagsterInstance]) -> State:
    return shared[0]


@pytest.fixture
def instance(shared: tuple[State, dg.DagsterInstance]) -> dg.DagsterInstance:
    return shared[1]


def record_built(instance: dg.DagsterInstance, keys: list[dg.AssetKey], shards: list[str]) -> None:
    for key in keys:
        for shard in shards:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=shard))


def requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str] | int]:
    """What a tick requested, by asset: shard keys for per-shard assets, a count for meta_cap."""
    out: dict[str, list[str] | int] = {}
    for key in PER_SHARD_KEYS:
        partitions = sorted(result.get_requested_partitions(key))
        if partitions:
            out[key.to_user_string()] = partitions
    if result.get_num_requested(META_CAP):
        out["meta_cap"] = result.get_num_requested(META_CAP)
    return out


def test_changed_rows_of_one_shard_request_that_shard_then_the_merged_asset_once(
    state: State, instance: dg.DagsterInstance
) -> None:
    defs = state.defs()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert tick.total_requested == 0

    shard = change_one_caption(state.source, BUILT)
    assert state.observe(instance) == 1
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    per_shard = {key.to_user_string(): [shard] for key in PER_SHARD_KEYS}
    assert requested(tick) == per_shard

    state.build(instance, shard, shard)  # what the sensor's backfill runs: one ranged run
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {"meta_cap": 1}

    instance.report_runless_asset_event(dg.AssetMaterialization(META_CAP))  # the merge ran
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {}


def test_unchanged_reobservation_requests_nothing(state: State, instance: dg.DagsterInstance) -> None:
    defs = state.defs()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    for path in state.source.glob("*_grouped.jsonl"):
        path.write_bytes(path.read_bytes())  # new modification times, same rows: staged again
    assert state.observe(instance) == 0
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0


def test_shards_rebuilt_by_hand_request_their_downstream_once(
    state: State, instance: dg.DagsterInstance
) -> None:
    defs = state.defs()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    result = dg.materialize(
        ALL_ASSETS,
        selection=[RAW_CAPTIONS],
        instance=instance,
        resources=state.resources(),
        tags=range_tags(BUILT[0], BUILT[-1]),
    )
    assert result.success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    downstream = {key.to_user_string(): BUILT for key in PER_SHARD_KEYS if key != RAW_CAPTIONS}
    assert {k: v for k, v in requested(tick).items() if k != "meta_cap"} == downstream

    state.build(instance, BUILT[0], BUILT[-1])  # what the sensor's backfill runs
    instance.report_runless_asset_event(dg.AssetMaterialization(META_CAP))  # and the merge
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {}


def test_code_version_bump_requests_every_shard_of_that_asset(
    state: State, instance: dg.DagsterInstance
) -> None:
    tick = dg.evaluate_automation_conditions(defs=state.defs(), instance=instance)
    bumped = caption_tars.map_asset_specs(lambda spec: spec.replace_attributes(code_version="2"))
    assets = [bumped if a is caption_tars else a for a in ALL_ASSETS]
    tick = dg.evaluate_automation_conditions(defs=state.defs(assets), instance=instance, cursor=tick.cursor)
    assert requested(tick) == {"caption_tars": SHARD_KEYS}


@dg.asset(
    deps=[CAPTION_TARS], partitions_def=SHARDS, automation_condition=rebuild_on_change(), group_name="test"
)
def published_tars() -> None:
    """A stand-in for any per-shard asset built from the tars."""


def check_result(instance: dg.DagsterInstance, shard: str, passed: bool) -> dg.AssetCheckEvaluation:
    """A tar_matches_captions result aimed at the shard's latest tar materialization."""
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CAPTION_TARS, asset_partitions=[shard]), limit=1
    ).records[0]
    return dg.AssetCheckEvaluation(
        asset_key=CAPTION_TARS,
        check_name="tar_matches_captions",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        blocking=True,
        partition=shard,
        target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        ),
    )


def test_failed_blocking_check_holds_back_its_downstream(state: State, instance: dg.DagsterInstance) -> None:
    defs = state.defs([*ALL_ASSETS, published_tars])
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    for shard, passed in (("0100", False), ("0101", True)):  # new tars: one fails its check
        instance.report_runless_asset_event(
            dg.AssetMaterialization(CAPTION_TARS, partition=shard, tags={DATA_VERSION_TAG: f"new-{shard}"})
        )
        instance.report_runless_asset_event(check_result(instance, shard, passed))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert sorted(tick.get_requested_partitions(published_tars.key)) == ["0101"]
    assert tick.total_requested == 1


def test_check_results_of_a_ranged_run_count_as_passed_for_automation(
    state: State, instance: dg.DagsterInstance
) -> None:
    @dg.asset(
        deps=[CAPTION_TARS],
        partitions_def=SHARDS,
        automation_condition=dg.AutomationCondition.all_deps_blocking_checks_passed(),
    )
    def after_checks() -> None: ...

    tick = dg.evaluate_automation_conditions(defs=state.defs([*ALL_ASSETS, after_checks]), instance=instance)
    passed = tick.get_requested_partitions(after_checks.key)
    assert set(BUILT) <= passed  # every shard built by the run; no result yet: not passed
    assert "0300" not in passed


def test_fill_requests_one_ranged_run_per_block_of_missing_shards(instance: dg.DagsterInstance) -> None:
    requests = fill_requests(instance, build_shards.name, tick="t")
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests]
    assert ranges == [("0100", "0249"), ("0500", "0500")]  # NOT_BUILT


def test_fill_requests_include_shards_whose_blocking_check_failed(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(check_result(instance, "0700", passed=False))
    try:
        requests = fill_requests(instance, build_shards.name, tick="t")
    finally:  # a newer materialization: the failed result no longer describes the shard
        record_built(instance, [CAPTION_TARS], ["0700"])
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests]
    assert ranges == [("0100", "0249"), ("0500", "0500"), ("0700", "0700")]


def test_fill_schedule_on_an_empty_instance_requests_one_run_of_all_shards() -> None:
    schedule = build_fill_schedule("0 3 * * 0", build_shards)
    with (
        dg.instance_for_test() as empty,
        dg.build_schedule_context(
            instance=empty, scheduled_execution_time=datetime.datetime(2026, 1, 4, 3, tzinfo=datetime.UTC)
        ) as context,
    ):
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert schedule.name == FILL_SCHEDULE
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [("0000", "0999")]


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def test_shard_ranges_joins_the_closest_ranges_down_to_the_limit() -> None:
    keys = ["0001", "0002", "0003", "0010", "0500", "0501", "0990"]
    assert shard_ranges(keys, max_ranges=10) == [
        ("0001", "0003"),
        ("0010", "0010"),
        ("0500", "0501"),
        ("0990", "0990"),
    ]
    assert shard_ranges(keys, max_ranges=2) == [("0001", "0010"), ("0500", "0990")]
    assert shard_ranges(keys, max_ranges=1) == [("0001", "0990")]
    assert shard_ranges([]) == []


@pytest.fixture(scope="module")
def built_first(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path
) -> Iterator[tuple[State, dg.DagsterInstance]]:
    """The path a user takes: every shard built (as ``e6-assets build`` does, one ranged run) on an
    instance where the source was never observed. Tests leave it settled: every shard built from its
    current rows."""
    root = tmp_path_factory.mktemp("built-first")
    state = State(root / "source", root / "data")
    shutil.copytree(sample_dir, state.source)
    with dg.DagsterInstance.ephemeral() as ephemeral:
        state.build(ephemeral, SHARD_KEYS[0], SHARD_KEYS[-1])
        yield state, ephemeral


def source_files(source: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in source.glob("*_grouped.jsonl")}


def restore(files: dict[Path, bytes]) -> None:
    for path, content in files.items():
        if path.read_bytes() != content:
            path.write_bytes(content)


def test_observation_after_a_build_finds_the_rows_the_build_read_and_requests_nothing(
    built_first: tuple[State, dg.DagsterInstance],
) -> None:
    state, instance = built_first
    defs = state.defs()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor turned on
    assert state.observe(instance) == 0
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {}

    shard = change_one_caption(state.source, SHARD_KEYS[40:50])
    assert state.observe(instance) == 1
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {key.to_user_string(): [shard] for key in PER_SHARD_KEYS}
    state.build(instance, shard, shard)  # what the sensor's backfill runs: the instance is settled again


def test_a_build_from_rows_other_than_the_observed_ones_brings_the_observation_up_to_date(
    built_first: tuple[State, dg.DagsterInstance],
) -> None:
    """Observed with a change, then built from the old rows again (the source was put back), then
    changed once more: the last observation must count as a change, though it finds the rows the
    earlier observation recorded."""
    state, instance = built_first
    defs = state.defs()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    original = source_files(state.source)
    shard = change_one_caption(state.source, SHARD_KEYS[60:70])
    changed = source_files(state.source)
    assert state.observe(instance) == 1
    restore(original)
    state.build(instance, shard, shard)  # by hand, before the sensor's request ran
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert {k: v for k, v in requested(tick).items() if k != "meta_cap"} == {}

    restore(changed)
    assert state.observe(instance) == 1
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {key.to_user_string(): [shard] for key in PER_SHARD_KEYS}
    restore(original)
    state.build(instance, shard, shard)
