"""``e6-assets publish`` as a user runs it: real processes, a real instance on disk, the fake Hub at
``HF_ENDPOINT`` and the token in ``HF_TOKEN``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.core.publish import human_bytes
from e6_assets.defs.publish.assets import NOT_CONFIGURED
from e6_assets_tests.fake_hub import FakeHub
from e6_assets_tests.publish_support import TOKEN, built_sample, copy_of


@pytest.fixture(scope="module")
def hub():
    server = FakeHub(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def layout(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> DataLayout:
    return copy_of(built_sample(sample_dir, tmp_path_factory), tmp_path / "data")


def _environment(hub: FakeHub, tmp_path: Path, layout: DataLayout) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("E6_", "DAGSTER_HOME", "HF_"))}
    (tmp_path / "home").mkdir(exist_ok=True)
    environment.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=TOKEN,
        HF_HUB_DISABLE_XET="1",  # the fake Hub speaks LFS only
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_TOKEN_PATH=str(tmp_path / "no-stored-token"),
        DAGSTER_HOME=str(tmp_path / "home"),
        E6_DATA_DIR=str(layout.root),
    )
    return environment


def _publish(args: list[str], cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "e6_assets.cli", "publish", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_publish_without_a_repo_is_one_line_and_exit_2(hub, layout, tmp_path):
    result = _publish(["--yes"], tmp_path, _environment(hub, tmp_path, layout))
    assert result.returncode == 2
    assert result.stderr.strip() == f"e6-assets: {NOT_CONFIGURED}"


def test_dry_run_then_publish_then_nothing_left_and_the_token_is_nowhere(hub, layout, tmp_path):
    environment = _environment(hub, tmp_path, layout)
    repo = ["--repo", "e621/cli"]

    dry = _publish(repo, tmp_path, environment)
    assert dry.returncode == 0, dry.stderr
    assert "repository: datasets/e621/cli @ main (does not exist yet, or cannot be read" in dry.stdout
    # Every tar and index, meta_cap.tar.gz, and the card (a few kB, generated, not on disk).
    built = sum(path.stat().st_size for path in [*layout.root.glob("captions/*"), layout.meta_cap_tar_gz])
    plan = "add: 2002 files, ", " (shards 0000...0999; meta_cap.tar.gz; README.md)\n"
    assert any(human_bytes(size).join(plan) in dry.stdout for size in range(built, built + 20_000, 1000))
    assert "dry run: nothing was changed on the Hub; run again with --yes to publish" in dry.stdout
    assert "e621/cli" not in hub.repos

    done = _publish([*repo, "--yes"], tmp_path, environment)
    assert done.returncode == 0, done.stderr
    head = hub.repos["e621/cli"].refs["main"]
    assert f"published datasets/e621/cli@main at {head} in 21 commits" in done.stdout
    assert set(hub.files("e621/cli")) >= {"captions/0000.tar", "captions/0999.json", "README.md"}

    again = _publish([*repo, "--yes"], tmp_path, environment)
    assert again.returncode == 0, again.stderr
    assert "nothing to publish: the Hub already holds this build" in again.stdout
    assert hub.repos["e621/cli"].refs["main"] == head

    # The token went to the Hub on every write, and nowhere else: not in any output, run log,
    # metadata or file of the instance.
    assert f"Bearer {TOKEN}" in hub.auth_headers
    outputs = [run.stdout + run.stderr for run in (dry, done, again)]
    assert all(TOKEN not in output for output in outputs)
    stored = [path for path in (tmp_path / "home").rglob("*") if path.is_file()]
    assert stored and all(TOKEN.encode() not in path.read_bytes() for path in stored)


def test_a_killed_publish_then_publish_again_sends_only_what_is_missing(hub, layout, tmp_path):
    environment = _environment(hub, tmp_path, layout)
    args = [sys.executable, "-m", "e6_assets.cli", "publish", "--repo", "e621/killed", "--yes"]
    stall = hub.hold("PUT", "/lfs-upload/e621/killed/", after=20)
    process = subprocess.Popen(
        args, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert stall.reached.wait(timeout=240), "the publish never got to its 21st upload"
    finally:
        process.kill()
        process.communicate()
        stall.release.set()
    sent_before = list(hub.repos["e621/killed"].uploads)
    assert sent_before  # some objects reached the Hub before the kill, none was committed
    assert [commit.title for commit in hub.history("e621/killed")] == ["initial commit"]

    again = subprocess.run(args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)

    assert again.returncode == 0, again.stderr
    sent_again = hub.repos["e621/killed"].uploads[len(sent_before) :]
    assert not set(sent_again) & set(sent_before)  # what reached the Hub was not sent again
    tars = {path.name: path.read_bytes() for path in layout.root.glob("captions/*.tar")}
    files = hub.files("e621/killed")
    assert all(files[f"captions/{name}"] == data for name, data in tars.items())
