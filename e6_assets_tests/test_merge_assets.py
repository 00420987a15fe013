"""The merge assets in Dagster: per-shard check figures, the merged summary, skipping, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.core.merge import MergeCounts, read_merge_footer
from e6_assets.core.sample import write_sample_universe
from e6_assets.core.shards import SHARD_KEYS, shard_key
from e6_assets.core.universe import file_sha256
from e6_assets.definitions import resources
from e6_assets.defs.assets import ALL_ASSETS, PER_SHARD_ASSETS
from e6_assets.defs.captions.assets import raw_captions, rearranged_captions
from e6_assets.defs.merge.assets import (
    META_LAT_V2,
    META_LAT_V2_FRAGMENTS,
    NOT_CONFIGURED,
    meta_lat_v2,
    meta_lat_v2_fragments,
    observe_id_universe,
)
from e6_assets_tests.conftest import SAMPLE_ROWS, range_tags
from e6_assets_tests.merge_support import (
    captions_by_id,
    copy_rearranged,
    fragments_without_dagster,
    prepared_captions,
    reference_counts,
    reference_merge,
)

FIRST, LAST = "0000", "0029"  # the shards run through Dagster (each partition costs bookkeeping time)


def _materialize(selection: list, instance: dg.DagsterInstance, tags: dict | None = None):
    return dg.materialize(
        ALL_ASSETS,
        selection=selection,
        instance=instance,
        tags=tags or {},
        resources=resources(),
        raise_on_error=False,
    )


def _check_figures(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.partition: evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "missing_captions"
    }


@pytest.fixture
def universe(e6_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_sample_universe(tmp_path / "meta_lat.json", SAMPLE_ROWS)
    monkeypatch.setenv("E6_ID_UNIVERSE", str(path))
    return path


@pytest.fixture
def layout(e6_env: Path, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    """The data root with every shard's rearranged captions already there."""
    return copy_rearranged(prepared_captions(sample_dir, tmp_path_factory), e6_env)


def test_per_shard_figures_match_the_rule_and_sum_to_the_merged_summary(
    universe: Path, layout: DataLayout, instance: dg.DagsterInstance
) -> None:
    result = _materialize([meta_lat_v2_fragments], instance, range_tags(FIRST, LAST))
    assert result.success
    figures = _check_figures(result)
    assert sorted(figures) == SHARD_KEYS[: int(LAST) + 1]

    entries, captions = json.loads(universe.read_bytes()), captions_by_id(layout)
    by_shard: dict[str, dict] = {}
    for key, entry in entries.items():
        by_shard.setdefault(shard_key(int(key)), {})[key] = entry
    for key, evaluation in figures.items():
        numbers = {name: evaluation.metadata[name].value for name in MergeCounts().as_dict()}
        assert MergeCounts(**numbers) == reference_counts(by_shard.get(key, {}), captions), key
        assert evaluation.passed == (numbers["missing_caption"] <= 0.05 * numbers["ids"])
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert not all(e.passed for e in figures.values()) and any(e.passed for e in figures.values())

    # The other shards by the same functions outside Dagster, then the merged asset in Dagster.
    fragments_without_dagster(layout, universe, SHARD_KEYS[int(LAST) + 1 :])
    merged = _materialize([meta_lat_v2], instance)
    assert merged.success
    metadata = instance.get_latest_materialization_event(META_LAT_V2).asset_materialization.metadata
    shard_sum = sum((read_merge_footer(layout.meta_lat_fragment(k))[0] for k in SHARD_KEYS), MergeCounts())
    assert shard_sum == reference_counts(entries, captions)
    assert {name: metadata[name].value for name in shard_sum.as_dict()} == shard_sum.as_dict()
    assert metadata["summary"].value == shard_sum.summary_line()
    [check] = merged.get_asset_check_evaluations()
    assert check.passed and check.severity == dg.AssetCheckSeverity.ERROR

    expected, missing = reference_merge(entries, captions)
    assert layout.meta_lat_v2_json.read_bytes() == json.dumps(expected, indent=2).encode()
    assert json.loads(layout.missing_json.read_bytes()) == missing


def test_warn_threshold_is_set_by_env_var(
    universe: Path, layout: DataLayout, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E6_MISSING_CAPTION_WARN", "1")
    result = _materialize([meta_lat_v2_fragments], instance, range_tags("0000", "0009"))
    figures = _check_figures(result)
    assert len(figures) == 10 and all(e.passed for e in figures.values())
    assert {e.metadata["warn_above_fraction"].value for e in figures.values()} == {1.0}


def test_without_universe_merge_assets_skip_and_the_rest_builds(
    e6_env: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E6_ID_UNIVERSE", "")  # not configured
    result = _materialize(list(PER_SHARD_ASSETS), instance, range_tags("0000", "0004"))
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert rearranged_captions.key in materialized and META_LAT_V2_FRAGMENTS not in materialized
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(NOT_CONFIGURED in message for message in logs)
    assert not DataLayout(e6_env).meta_lat_fragment("0000").exists()

    merged = _materialize([meta_lat_v2], instance)
    assert merged.success and not merged.get_asset_materialization_events()


def test_bad_universe_fails_naming_the_id_and_writes_nothing(
    e6_env: Path, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meta_lat.json"
    path.write_text('{"1000": {"tags": "a"}, "2001": {"tags": "b", "train_resolution": [512, -8]}}')
    monkeypatch.setenv("E6_ID_UNIVERSE", str(path))
    result = _materialize(
        [raw_captions, rearranged_captions, meta_lat_v2_fragments], instance, range_tags("0000", "0002")
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "id 2001: train_resolution must be two positive integers" in str(failure.step_failure_data.error)
    layout = DataLayout(e6_env)
    assert not any(layout.meta_lat_fragment(key).exists() for key in SHARD_KEYS)
    assert list(layout.universe_stage_dir.iterdir()) == []


def test_observing_the_universe_records_its_sha256(universe: Path, instance: dg.DagsterInstance) -> None:
    observation = _observe(instance)
    assert observation.tags["dagster/data_version"] == file_sha256(universe)
    assert observation.metadata["synthetic"].value is False


def _observe(instance: dg.DagsterInstance) -> dg.AssetObservation:
    from dagster._core.definitions.observe import observe  # the in-process counterpart of materialize

    result = observe([observe_id_universe], instance=instance, resources=resources())
    assert result.success
    [event] = result.asset_observations_for_node(observe_id_universe.op.name)
    return event
