"""E6_ID_UNIVERSE as a file in a Hub dataset repo, read through huggingface_hub from a local cache.

The test lays out the Hub cache itself (refs, blobs, a snapshot symlink, the tree listing) and runs
offline, so the real download code resolves the revision and finds the file without a network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from e6_assets.universe import iter_entries, resolve_universe, stage_universe

COMMIT = "0123456789abcdef0123456789abcdef01234567"
UNIVERSE = {"5": {"tags": "fox", "train_resolution": [512, 512]}, "1005": {"tags": "wolf"}}


def _lay_out_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    tree = {}
    for name, data in files.items():
        sha256 = hashlib.sha256(data).hexdigest()
        (repo / "blobs").mkdir(exist_ok=True)
        (repo / "blobs" / sha256).write_bytes(data)
        pointer = repo / "snapshots" / COMMIT / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(repo / "blobs" / sha256, pointer.parent))
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        tree[name] = {"size": len(data), "blob_id": blob_id, "lfs_sha256": sha256, "lfs_size": len(data)}
    (repo / "trees").mkdir()
    (repo / "trees" / f"{COMMIT}.json").write_text(json.dumps({"format_version": 1, "files": tree}))


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HUB_OFFLINE once, at import (already done by other tests' imports).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_file_is_found_at_the_commit_of_the_revision(offline_hub: Path, tmp_path: Path) -> None:
    data = json.dumps(UNIVERSE, indent=2).encode()
    _lay_out_cache(offline_hub, "someone/e621-latents", {"meta/meta_lat.json": data})

    resolved = resolve_universe(
        "hf://datasets/someone/e621-latents/meta/meta_lat.json@main", tmp_path, str(offline_hub)
    )
    assert resolved.path.read_bytes() == data
    assert resolved.description == f"hf://datasets/someone/e621-latents/meta/meta_lat.json@{COMMIT}"
    assert resolved.metadata["hub_commit"] == COMMIT and not resolved.synthetic
    staged = stage_universe(resolved.path, tmp_path / "stage").staged
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.entries == 2


def test_hub_tar_gz_is_read(offline_hub: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps(UNIVERSE).encode()
        info = tarfile.TarInfo("meta_lat.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    _lay_out_cache(offline_hub, "someone/e621-latents", {"meta_lat.tar.gz": buffer.getvalue()})

    resolved = resolve_universe(
        "hf://datasets/someone/e621-latents/meta_lat.tar.gz", tmp_path, str(offline_hub)
    )
    assert [entry[0] for entry in iter_entries(resolved.path)] == [5, 1005]


def test_hub_address_without_a_file_is_refused(tmp_path: Path) -> None:
    from e6_assets.sources import SourceNotFound

    with pytest.raises(SourceNotFound, match="names no file"):
        resolve_universe("hf://datasets/someone/e621-latents@main", tmp_path)
