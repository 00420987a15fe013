"""Publishing to a Hub dataset repo: the plan, the commits and the card.

The real huggingface_hub client talks HTTP to the fake Hub server (``fake_hub.py``); no function of
huggingface_hub is replaced. The build is the sample's, made once by the pipeline.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import tarfile
from pathlib import Path

import pytest
import yaml
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from e6_assets.core import pipeline, publish
from e6_assets.core.captions import CaptionCounts
from e6_assets.core.dataset_card import Provenance, card_facts, render_card, source_of
from e6_assets.core.layout import DataLayout
from e6_assets.core.merge import MergeCounts
from e6_assets.core.sample import write_sample_universe
from e6_assets.core.shards import SHARD_KEYS
from e6_assets_tests.conftest import SAMPLE_ROWS
from e6_assets_tests.fake_hub import FakeHub
from e6_assets_tests.merge_support import merge_without_dagster
from e6_assets_tests.publish_support import TOKEN, built_sample, change_a_caption, client_online, copy_of

BASE = "e621/captions"  # published once in this module; tests that publish to it again restore it
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hub():
    server = FakeHub(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def built(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    return built_sample(sample_dir, tmp_path_factory)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client_online(monkeypatch, tmp_path)


def _publish(
    hub: FakeHub, repo: str, layout: DataLayout, merged: bool = False
) -> tuple[publish.Plan, publish.PublishResult]:
    target = publish.PublishTarget(repo, endpoint=hub.url)
    api = publish.hub_api(target)
    plan = publish.plan_release(api, target, layout, Provenance(), merged)
    return plan, publish.publish(api, plan)


@pytest.fixture(scope="module")
def first_publish(hub: FakeHub, built: DataLayout, tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        client_online(monkeypatch, tmp_path_factory.mktemp("client"))
        return _publish(hub, BASE, built)


@pytest.fixture
def base(hub: FakeHub, first_publish) -> str:
    """BASE as the first publish left it; LFS uploads counted from here; put back afterwards."""
    saved = hub.snapshot(BASE)
    hub.restore(hub.snapshot(BASE))
    yield BASE
    hub.restore(saved)


def _release(layout: DataLayout) -> dict[str, bytes]:
    files = {"meta_cap.tar.gz": layout.meta_cap_tar_gz.read_bytes()}
    for key in SHARD_KEYS:
        files[f"captions/{key}.tar"] = layout.tar(key).read_bytes()
        files[f"captions/{key}.json"] = layout.tar_index(key).read_bytes()
    return files


def _changed_paths(hub: FakeHub, repo: str, ref: str = "main") -> list[set[str]]:
    """The paths each commit of ``ref`` changed, newest first (the initial commit left out)."""
    commits = hub.history(repo, ref)
    return [
        {p for p in commit.tree.keys() | parent.tree.keys() if commit.tree.get(p) != parent.tree.get(p)}
        for commit, parent in itertools.pairwise(commits)
    ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- first publish, no change, one change ------------------------------------------------------------


def test_first_publish_uploads_everything_through_one_pull_request(hub, built, first_publish):
    plan, result = first_publish
    assert plan.head is None  # the repo did not exist: it was created
    assert (len(plan.of("add")), len(plan.of("update")), len(plan.of("delete"))) == (2002, 0, 0)

    files, expected = hub.files(BASE), _release(built)
    assert set(files) == set(expected) | {".gitattributes", "README.md"}
    assert all(files[path] == data for path, data in expected.items())
    tree = hub.repos[BASE].head("main").tree
    assert all(
        tree[f"captions/{k}.tar"].lfs_sha256 == _sha256(expected[f"captions/{k}.tar"]) for k in SHARD_KEYS
    )
    assert set(hub.repos[BASE].uploads) == {
        _sha256(data) for p, data in expected.items() if p.endswith("gz")
    } | {_sha256(expected[f"captions/{k}.tar"]) for k in SHARD_KEYS}

    # The branch went from nothing to everything in one step: the merge of the pull request.
    assert [commit.title for commit in hub.history(BASE)] == [
        f"Merge pull request #1: {publish.PULL_REQUEST_TITLE}",
        "initial commit",
    ]
    parts = _changed_paths(hub, BASE, "refs/pr/1")
    assert result == publish.PublishResult(hub.repos[BASE].refs["main"], 21, 2002, "refs/pr/1")
    assert len(parts) == len(plan.commits) == 21  # 2002 files, at most 100 a commit
    assert all(len(paths) <= publish.MAX_FILES_PER_COMMIT for paths in parts)
    for paths in parts:  # each tar with its index
        assert {p.replace(".json", ".tar") for p in paths if p.startswith("captions/")} == {
            p for p in paths if p.endswith(".tar")
        }
    assert parts[0] >= {"README.md", "meta_cap.tar.gz"}  # the card comes last, with the merged file


def test_publishing_the_same_build_again_makes_no_commit(hub, built, base, online):
    since = len(hub.requests)
    plan, result = _publish(hub, base, built)
    assert (plan.changes, plan.unchanged, plan.commits) == ([], 2002, [])
    assert "nothing to publish" in plan.describe()
    assert result.commits_made == 0 and result.commit == hub.repos[base].refs["main"]
    assert hub.count("POST", f"/api/datasets/{base}/commit", since) == 0
    assert hub.count("POST", f"/datasets/{base}.git/info/lfs/objects/batch", since) == 0
    assert len(hub.history(base)) == 2


def test_one_changed_shard_uploads_its_tar_and_index_and_meta_cap_in_one_commit(
    hub, built, base, online, tmp_path
):
    layout = copy_of(built, tmp_path / "data")
    change_a_caption(layout, "0042")

    plan, result = _publish(hub, base, layout)

    changed = {"captions/0042.tar", "captions/0042.json", "meta_cap.tar.gz"}
    assert {(c.action, c.path_in_repo) for c in plan.changes} == {("update", path) for path in changed}
    assert plan.bytes_to_upload == sum(len(data) for p, data in _release(layout).items() if p in changed)
    assert (result.commits_made, result.pull_request) == (1, None)  # small enough: straight onto main
    assert _changed_paths(hub, base)[0] == changed
    assert sorted(hub.repos[base].uploads) == sorted(  # the LFS objects sent: these two only
        [_sha256(layout.tar("0042").read_bytes()), _sha256(layout.meta_cap_tar_gz.read_bytes())]
    )
    files = hub.files(base)
    assert all(files[path] == data for path, data in _release(layout).items())


def test_files_the_build_no_longer_has_are_deleted_under_the_prefix_only(hub, built, base, online):
    HfApi(endpoint=hub.url).create_commit(
        base,
        [CommitOperationAdd("captions/old/0000.tar", b"\0" * 1024), CommitOperationAdd("notes.txt", b"kept")],
        commit_message="by hand",
        repo_type="dataset",
    )
    plan, _ = _publish(hub, base, built)
    assert [(c.action, c.path_in_repo) for c in plan.changes] == [("delete", "captions/old/0000.tar")]
    files = hub.files(base)
    assert "captions/old/0000.tar" not in files and files["notes.txt"] == b"kept"


# --- interruptions and refusals ---------------------------------------------------------------------


def test_interrupted_publish_continues_its_pull_request_and_uploads_only_what_is_missing(hub, built, online):
    repo = "e621/interrupted"
    hub.fail("POST", f"/api/datasets/{repo}/commit/", after=3)  # the 4th commit request fails
    with pytest.raises(HfHubHTTPError):
        _publish(hub, repo, built)
    assert [commit.title for commit in hub.history(repo)] == ["initial commit"]  # main untouched
    assert len(_changed_paths(hub, repo, "refs/pr/1")) == 3
    sent_before = list(hub.repos[repo].uploads)  # including the 4th commit's tars, sent before it failed

    plan, result = _publish(hub, repo, built)

    assert len(plan.of("add")) == 2002  # main still lacks everything...
    assert (result.pull_request, result.commits_made) == ("refs/pr/1", 21 - 3)  # ...the PR does not
    sent_again = hub.repos[repo].uploads[len(sent_before) :]
    assert not set(sent_again) & set(sent_before)
    assert set(sent_before) | set(sent_again) == set(hub.repos[BASE].lfs)
    assert [pr.status for pr in hub.repos[repo].prs] == ["merged"]
    files = hub.files(repo)
    assert all(files[path] == data for path, data in _release(built).items())


def test_a_branch_that_moved_after_the_plan_refuses_the_commit_and_a_new_plan_goes_through(
    hub, built, base, online, tmp_path
):
    layout = copy_of(built, tmp_path / "data")
    change_a_caption(layout, "0500")
    target = publish.PublishTarget(base, endpoint=hub.url)
    api = publish.hub_api(target)
    plan = publish.plan_release(api, target, layout, Provenance(), False)
    HfApi(endpoint=hub.url).create_commit(
        base, [CommitOperationAdd("notes.txt", b"meanwhile")], commit_message="meanwhile", repo_type="dataset"
    )
    with pytest.raises(HfHubHTTPError, match="412"):
        publish.publish(api, plan)
    assert hub.history(base)[0].title == "meanwhile"  # nothing half-applied

    result = publish.publish(api, publish.plan_release(api, target, layout, Provenance(), False))
    assert (
        result.commits_made == 1 and hub.files(base)["captions/0500.tar"] == layout.tar("0500").read_bytes()
    )


def test_without_a_token_the_plan_is_made_but_publishing_refuses(hub, built, online, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    target = publish.PublishTarget("e621/no-token", endpoint=hub.url)
    api = publish.hub_api(target)
    plan = publish.plan_release(api, target, built, Provenance(), False)  # reading needs no token
    with pytest.raises(publish.PublishError, match="needs a Hub token with write access: set HF_TOKEN"):
        publish.publish(api, plan)
    assert "e621/no-token" not in hub.repos


def test_a_tar_that_no_longer_matches_its_index_is_refused_before_its_commit(hub, built, online, tmp_path):
    layout = copy_of(built, tmp_path / "data")
    tar = bytearray(layout.tar("0007").read_bytes())
    tar[-1] ^= 0xFF  # same size, other bytes
    layout.tar("0007").write_bytes(bytes(tar))
    with pytest.raises(publish.PublishError, match=r"0007\.tar changed since the plan was made"):
        _publish(hub, "e621/tampered", layout)
    assert [commit.title for commit in hub.history("e621/tampered")] == ["initial commit"]


def test_a_partial_build_is_refused_naming_the_first_missing_shard(hub, built, online, tmp_path):
    layout = copy_of(built, tmp_path / "data")
    layout.tar_index("0123").unlink()
    target = publish.PublishTarget("e621/partial", endpoint=hub.url)
    with pytest.raises(publish.PublishError, match=r"1 shards have no tar or index yet \(first: 0123\)"):
        publish.plan_release(publish.hub_api(target), target, layout, Provenance(), False)


# --- how commits are cut -----------------------------------------------------------------------------


def _fake_release(index_size: int) -> list[publish.ReleaseFile]:
    files = []
    for key in SHARD_KEYS:
        files.append(publish.ReleaseFile(f"captions/{key}.tar", b"", 10_240, key, key, key))
        files.append(publish.ReleaseFile(f"captions/{key}.json", b"", index_size, key, key, key))
    return [
        *files,
        publish.ReleaseFile("meta_cap.tar.gz", b"", 9, "m", "m"),
        publish.ReleaseFile("README.md", b"", 9, "r", "r"),
    ]


def test_commits_hold_at_most_100_files_keep_each_shard_whole_and_end_with_the_card():
    changes, _ = publish.diff(_fake_release(index_size=500_000), {}, "captions/")
    commits = publish.batch_changes(changes)
    assert len(commits) == 21  # 2002 files: the fewest commits of at most 100
    assert [len(commit) for commit in commits] == [100] * 20 + [2]
    for commit in commits:
        shards = [c.file.shard for c in commit if c.file.shard]
        assert all(shards.count(shard) == 2 for shard in shards)
    assert commits[-1][-1].path_in_repo == "README.md"


def test_commits_also_keep_the_files_sent_inline_under_the_payload_budget():
    # 4 MB indexes (at full scale they are about 0.5 MB): the budget, not the file count, decides.
    changes, _ = publish.diff(_fake_release(index_size=4_000_000), {}, "captions/")
    commits = publish.batch_changes(changes)
    inline = [sum(c.size for c in commit if c.file.inline) for commit in commits]
    shards_per_commit = publish.MAX_INLINE_BYTES_PER_COMMIT // 4_000_000
    assert max(inline) <= publish.MAX_INLINE_BYTES_PER_COMMIT
    assert len(commits) == -(-1000 // shards_per_commit)  # the last one also takes meta_cap and the card
    assert commits[-1][-1].path_in_repo == "README.md"


# --- the dataset card --------------------------------------------------------------------------------


def test_the_card_points_the_viewer_at_the_tars_only_and_holds_the_builds_figures(hub, built, first_publish):
    files = hub.files(BASE)
    card = files["README.md"].decode()
    front = yaml.safe_load(card.split("---\n")[1])
    [config] = front["configs"]
    [data_files] = config["data_files"]
    assert sorted(p for p in files if fnmatch.fnmatch(p, data_files["path"])) == [
        f"captions/{key}.tar" for key in SHARD_KEYS
    ]
    assert front["license"] == "cc-by-nc-sa-4.0" and front["size_categories"] == ["1K<n<10K"]
    totals = sum((pipeline.read_counts(built, key) for key in SHARD_KEYS), CaptionCounts())
    for line in [
        f"| with a caption row in the source | {totals.rows:,} |",
        f"| caption from the tags (the model did not finish) | {totals.from_tags:,} |",
        f'| empty caption (no member in the tar; `""` in `meta_cap.json`) | {totals.empty:,} |',
        f"| members in the tars | {totals.rows - totals.empty:,} |",
    ]:
        assert line in card


def test_the_card_names_the_source_commit_and_how_to_build_it_again(built):
    record = source_of({"hub_repo": "lodestones/e621-captions", "hub_commit": SHA, "synthetic": False})
    card = render_card(card_facts(built, "me/x", "captions/", Provenance.of_shards([record] * 1000), False))
    url = "https://huggingface.co/datasets/lodestones/e621-captions"
    assert f"[lodestones/e621-captions]({url}) at commit [`{SHA}`]({url}/tree/{SHA})" in card
    assert f"e6-assets build --source hf://datasets/lodestones/e621-captions@{SHA}" in card
    assert "Synthetic" not in card


def test_the_card_of_a_mixed_or_synthetic_build_says_so_and_shows_no_local_path(built):
    hub_record = source_of({"hub_repo": "lodestones/e621-captions", "hub_commit": SHA})
    sample = source_of(
        {"synthetic": True, "source": "SYNTHETIC sample (generated, not e621 data): 3000 rows"}
    )
    local = source_of({"source": "local folder /home/someone/e621", "source_folder": "/home/someone/e621"})
    provenance = Provenance.of_shards([hub_record] * 990 + [sample] * 5 + [local] * 3)
    card = render_card(card_facts(built, "me/x", "captions/", provenance, False))
    assert "> **Synthetic data.**" in card and "- synthetic\n" in card
    assert f"at commit [`{SHA}`]" in card and "— 990 shards" in card
    assert "- a local folder of monthly files (e621) — 3 shards" in card and "/home/someone" not in card
    assert "- 2 shards without a recorded build" in card
    assert "e6-assets build --source" not in card  # no single source to build it again from


def test_with_an_id_universe_the_release_holds_the_merge_compressed_and_its_missing_lists(
    hub, built, online, tmp_path
):
    layout = copy_of(built, tmp_path / "data")
    universe = write_sample_universe(tmp_path / "meta_lat.json", SAMPLE_ROWS)
    totals = sum(merge_without_dagster(layout, universe), MergeCounts())
    target = publish.PublishTarget("e621/merged", endpoint=hub.url)
    plan = publish.plan_release(publish.hub_api(target), target, layout, Provenance(), merged=True)
    local = {file.path_in_repo: file for file in plan.local}
    assert {"meta_lat_v2.tar.gz", "missing.json"} <= {c.path_in_repo for c in plan.of("add")}
    with tarfile.open(local["meta_lat_v2.tar.gz"].content) as archive:
        assert archive.extractfile("meta_lat_v2.json").read() == layout.meta_lat_v2_json.read_bytes()
    assert local["missing.json"].content == layout.missing_json
    assert f"Log line: `{totals.summary_line()}`" in local["README.md"].content.decode()
