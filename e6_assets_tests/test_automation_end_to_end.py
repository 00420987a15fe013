"""Automation on the path users take, with real processes: ``e6-assets build`` first, then ``dg dev``
in the project's root with DAGSTER_HOME the only setting (the code location's defaults: the sample
source, ./data, no id universe), the automation sensor turned on, the source observed from the UI.

After a build from the command line, after the sensor's own backfill and after a build launched from
the UI, an observation with nothing changed requests nothing, and a changed post requests exactly its
shard (every per-shard asset) and then ``meta_cap`` once.

The sensor is evaluated every few seconds (``E6_AUTOMATION_INTERVAL_SECONDS``, only a timing knob) so
that the test waits for ticks briefly. No step is timed: each wait only gives up when something hangs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from e6_assets.core.shards import SHARD_KEYS
from e6_assets.defs.automation.schedules import IN_PROGRESS, OBSERVE_JOB
from e6_assets.defs.automation.sensors import AUTOMATION_SENSOR
from e6_assets.defs.captions.assets import CAPTION_TARS, META_CAP, RAW_CAPTIONS, REARRANGED_CAPTIONS
from e6_assets.defs.captions.source import CAPTION_SOURCE
from e6_assets_tests.cli_process import cli_env, instance_home
from e6_assets_tests.conftest import change_one_caption
from e6_assets_tests.dagster_dev import (
    UiServer,
    dg_dev,
    launch_job,
    project_copy,
    run_backfill,
    sensor_ticks,
    start_sensor,
)

PER_SHARD = [RAW_CAPTIONS, REARRANGED_CAPTIONS, CAPTION_TARS]
HANG_GUARD_SECONDS = 600.0  # waiting longer than this means something hangs (not a speed limit)
TICK_SECONDS = "3"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class Session:
    server: UiServer
    home: Path
    project: Path

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The instance, opened for one look and closed again, so that nothing the test holds open
        stands in the way of the server's processes."""
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            yield instance

    @property
    def sample_folder(self) -> Path:
        [folder] = (self.project / "data" / "sample-source").glob("rows-*")
        return folder


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A fresh clone's files, all 1000 shards built by ``e6-assets build`` (no flag, no E6_*
    variable), then ``dg dev`` on the same instance with the automation sensor turned on."""
    workdir = tmp_path_factory.mktemp("automation-e2e")
    project = project_copy(workdir / "project")
    home = instance_home(workdir / "home")
    env = cli_env(home)
    build = subprocess.run(
        [sys.executable, "-m", "e6_assets.cli", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert build.returncode == 0, build.stderr
    assert "wrote data/meta_cap.json" in build.stdout
    server_env = {**env, "E6_AUTOMATION_INTERVAL_SECONDS": TICK_SECONDS}
    with dg_dev(project, server_env, workdir / "dg-dev.log") as server:
        start_sensor(server.url, AUTOMATION_SENSOR)
        yield Session(server, home, project)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what}: still waiting after {HANG_GUARD_SECONDS:.0f} s"
        time.sleep(1)


def settled(session: Session) -> bool:
    """No run or backfill going, and the sensor's last two ticks, both after the last run and the
    last backfill ended, requested nothing.

    A backfill ends some time after its last run: until the backfill daemon records that run's
    materializations in the backfill, the automation counts the backfill's assets as in progress
    and holds back what depends on them. Ticks from that interval prove nothing.
    """
    with session.instance() as instance:
        if instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)):
            return False
        if instance.get_backfills(status=BulkActionStatus.REQUESTED):
            return False
        run_ends = [record.end_time or 0.0 for record in instance.get_run_records(limit=50)]
        backfills = instance.get_backfills(limit=10)
        backfill_ends = [backfill.backfill_end_timestamp or 0.0 for backfill in backfills]
        last_end = max(run_ends + backfill_ends)
    ticks = [tick for tick in sensor_ticks(session.server.url, AUTOMATION_SENSOR) if tick["endTimestamp"]]
    assert all(tick["status"] != "FAILURE" for tick in ticks), ticks
    recent = [tick for tick in ticks if tick["timestamp"] > last_end][:2]
    return len(recent) == 2 and all(tick["requestedAssetMaterializationCount"] == 0 for tick in recent)


def latest_event_id(session: Session) -> int:
    with session.instance() as instance:
        return instance.event_log_storage.get_maximum_record_id() or 0


def run_status(session: Session, run_id: str) -> dg.DagsterRunStatus:
    with session.instance() as instance:
        return instance.get_run_by_id(run_id).status


def observe(session: Session) -> int:
    """Launch ``observe_source`` from the UI and wait until everything it caused has run; returns
    the event id before the observation, for ``recorded_since``."""
    mark = latest_event_id(session)
    run_id = launch_job(session.server.url, OBSERVE_JOB)
    wait_for(lambda: run_status(session, run_id) in FINISHED, "the observation")
    assert run_status(session, run_id) == dg.DagsterRunStatus.SUCCESS
    wait_for(lambda: settled(session), "the automation after the observation")
    return mark


def recorded_since(session: Session, mark: int) -> dict[str, list[str] | int]:
    """What was observed and built after event ``mark``: shards by per-shard asset, and how many
    times meta_cap was built."""
    with session.instance() as instance:
        return _recorded_since(instance, mark)


def _recorded_since(instance: dg.DagsterInstance, mark: int) -> dict[str, list[str] | int]:
    found: dict[str, list[str] | int] = {}
    since = dg.AssetRecordsFilter(asset_key=CAPTION_SOURCE, after_storage_id=mark)
    observed = [record.partition_key for record in instance.fetch_observations(since, limit=2000).records]
    if observed:
        found["caption_source"] = sorted(observed)
    for key in [*PER_SHARD, META_CAP]:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=mark), limit=2000
        ).records
        if records:
            partitions = sorted(record.partition_key for record in records)
            found[key.to_user_string()] = len(records) if key == META_CAP else partitions
    return found


def only(shard: str) -> dict[str, list[str] | int]:
    """What one changed shard must cause: its observation, each per-shard asset once, meta_cap once."""
    return {"caption_source": [shard], **{key.to_user_string(): [shard] for key in PER_SHARD}, "meta_cap": 1}


def test_after_a_command_line_build_only_the_shard_whose_rows_changed_is_rebuilt(session: Session) -> None:
    mark = observe(session)
    assert recorded_since(session, mark) == {}

    shard = change_one_caption(session.sample_folder, SHARD_KEYS[40:50])
    mark = observe(session)
    assert recorded_since(session, mark) == only(shard)


def test_after_the_sensors_own_backfill_only_the_shard_whose_rows_changed_is_rebuilt(
    session: Session,
) -> None:
    shard = change_one_caption(session.sample_folder, SHARD_KEYS[60:70])
    observe(session)  # the sensor rebuilds the shard (as the test before checks)
    mark = observe(session)
    assert recorded_since(session, mark) == {}

    shard = change_one_caption(session.sample_folder, SHARD_KEYS[70:80])
    mark = observe(session)
    assert recorded_since(session, mark) == only(shard)


def test_after_a_build_launched_from_the_ui_only_the_shard_whose_rows_changed_is_rebuilt(
    session: Session,
) -> None:
    observed_shard = change_one_caption(session.sample_folder, SHARD_KEYS[100:110])
    observe(session)
    # Changed again, and another shard never observed, then built from the UI before any observation.
    change_one_caption(session.sample_folder, [observed_shard], text="A fox in the snow, corrected twice")
    unobserved_shard = change_one_caption(session.sample_folder, SHARD_KEYS[120:130])
    shards = SHARD_KEYS[100:200]
    mark = latest_event_id(session)
    backfill = run_backfill(
        session.server.url, [key.to_user_string() for key in PER_SHARD], shards, HANG_GUARD_SECONDS
    )
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    wait_for(lambda: settled(session), "the automation after the build")
    built = recorded_since(session, mark)
    assert built.pop("caption_source") == [observed_shard]  # brought up to date by the build
    assert built == {**{key.to_user_string(): shards for key in PER_SHARD}, "meta_cap": 1}

    mark = observe(session)
    assert recorded_since(session, mark) == {}
    assert unobserved_shard != observed_shard

    shard = change_one_caption(session.sample_folder, SHARD_KEYS[300:310])
    mark = observe(session)
    assert recorded_since(session, mark) == only(shard)
