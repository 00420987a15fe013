"""The ``hub_release`` asset: a dry run by default, ``publish: true`` to publish, and its settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.core.publish import PublishTarget
from e6_assets.defs.assets import ALL_ASSETS, PUBLISH_ASSETS
from e6_assets.defs.captions.assets import raw_captions
from e6_assets.defs.publish.assets import NOT_CONFIGURED, hub_release
from e6_assets.defs.resources import CaptionSource, DataDir, HubPublishTarget, IdUniverse
from e6_assets_tests.conftest import range_tags
from e6_assets_tests.fake_hub import FakeHub
from e6_assets_tests.publish_support import TOKEN, built_sample, client_online, copy_of


@pytest.fixture(scope="module")
def hub():
    server = FakeHub(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def layout(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> DataLayout:
    return copy_of(built_sample(sample_dir, tmp_path_factory), tmp_path / "data")


def _materialize(
    selection: list,
    instance: dg.DagsterInstance,
    layout: DataLayout,
    target: HubPublishTarget,
    sample_dir: Path,
    publish: bool = False,
    tags: dict | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ALL_ASSETS, *PUBLISH_ASSETS],
        selection=selection,
        instance=instance,
        tags=tags,
        resources={
            "source": CaptionSource(spec=str(sample_dir)),
            "data_dir": DataDir(path=str(layout.root)),
            "id_universe": IdUniverse(spec=""),
            "publish_target": target,
        },
        run_config={"ops": {"hub_release": {"config": {"publish": publish}}}}
        if hub_release in selection
        else None,
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node("hub_release")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_a_dry_run_records_the_plan_and_publish_true_publishes_it(
    hub, layout, sample_dir, instance, monkeypatch, tmp_path
):
    client_online(monkeypatch, tmp_path)
    target = HubPublishTarget(repo="e621/from-dagster", endpoint=hub.url)
    # Five shards built through Dagster: their source is recorded; the others' is not.
    built = _materialize(
        [raw_captions], instance, layout, target, sample_dir, tags=range_tags("0000", "0004")
    )
    assert built.success

    dry = _materialize([hub_release], instance, layout, target, sample_dir)
    assert dry.success
    plan = _metadata(dry)
    assert plan["mode"] == "dry run"
    assert (plan["files_to_add"], plan["files_to_update"], plan["files_to_delete"]) == (2002, 0, 0)
    assert (plan["commits_planned"], plan["via_pull_request"]) == (21, True)
    assert "add: 2002 files" in plan["plan"] and "does not exist yet" in plan["plan"]
    assert "e621/from-dagster" not in hub.repos  # a dry run changes nothing

    published = _materialize([hub_release], instance, layout, target, sample_dir, publish=True)
    assert published.success
    result = _metadata(published)
    assert result["mode"] == "published" and result["commits_made"] == 21
    assert result["published_commit"] == hub.repos["e621/from-dagster"].refs["main"]
    card = hub.files("e621/from-dagster")["README.md"].decode()
    release = [*layout.root.glob("captions/*"), layout.meta_cap_tar_gz]
    assert plan["bytes_to_upload"] == sum(path.stat().st_size for path in release) + len(card.encode())
    assert f"- a local folder of monthly files ({sample_dir.name}) — 5 shards" in card
    assert "- 995 shards without a recorded build" in card

    again = _metadata(_materialize([hub_release], instance, layout, target, sample_dir, publish=True))
    assert (again["mode"], again["files_to_add"], again["files_unchanged"]) == ("up to date", 0, 2002)


def test_without_a_repo_the_asset_says_so_and_records_nothing(layout, sample_dir, instance, monkeypatch):
    monkeypatch.delenv("E6_PUBLISH_REPO", raising=False)
    result = _materialize([hub_release], instance, layout, HubPublishTarget(), sample_dir)
    assert result.success
    assert result.asset_materializations_for_node("hub_release") == []
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert NOT_CONFIGURED in messages


def test_a_bad_repo_setting_fails_the_step_naming_it(layout, sample_dir, instance):
    result = _materialize([hub_release], instance, layout, HubPublishTarget(repo="captions"), sample_dir)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "E6_PUBLISH_REPO='captions': expected a dataset repo as OWNER/NAME" in (
        failure.step_failure_data.user_failure_data.description
    )


def test_settings_are_read_from_the_environment_when_the_asset_runs(monkeypatch):
    for name in ("E6_PUBLISH_REPO", "E6_PUBLISH_REVISION", "E6_PUBLISH_PREFIX", "E6_PUBLISH_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    resource = HubPublishTarget()
    assert resource.target() is None
    monkeypatch.setenv("E6_PUBLISH_REPO", "someone/e621-captions")
    assert resource.target() == PublishTarget("someone/e621-captions", "main", "captions/", False)
    monkeypatch.setenv("E6_PUBLISH_REVISION", "v2")
    monkeypatch.setenv("E6_PUBLISH_PREFIX", "/data/captions")
    monkeypatch.setenv("E6_PUBLISH_PRIVATE", "1")
    assert resource.target() == PublishTarget("someone/e621-captions", "v2", "data/captions/", True)
    monkeypatch.setenv("E6_PUBLISH_PREFIX", "")
    assert resource.target().prefix == ""  # the repo's root
    assert HubPublishTarget(repo="other/repo").target().repo_id == "other/repo"  # config wins
