"""E6_ID_UNIVERSE as a file in a Hub dataset repo, read through huggingface_hub from a local cache.

The tests lay out the Hub cache themselves (refs, blobs, a snapshot symlink, the tree listing) and
run offline, so huggingface_hub's own download code resolves the revision and finds the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from e6_assets.core.universe import iter_entries, resolve_universe, stage_universe
from e6_assets_tests.hub_cache import lay_out_dataset

COMMIT = "0123456789abcdef0123456789abcdef01234567"
UNIVERSE = {"5": {"tags": "fox", "train_resolution": [512, 512]}, "1005": {"tags": "wolf"}}


@pytest.fixture
def offline_hub(tmp_path: Path) -> Path:
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # conftest sets it before huggingface_hub is imported
    return tmp_path / "hub-cache"


def test_hub_file_is_found_at_the_commit_of_the_revision(offline_hub: Path, tmp_path: Path) -> None:
    data = json.dumps(UNIVERSE, indent=2).encode()
    lay_out_dataset(offline_hub, "someone/e621-latents", {"meta/meta_lat.json": data}, COMMIT)

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
    lay_out_dataset(offline_hub, "someone/e621-latents", {"meta_lat.tar.gz": buffer.getvalue()}, COMMIT)

    resolved = resolve_universe(
        "hf://datasets/someone/e621-latents/meta_lat.tar.gz", tmp_path, str(offline_hub)
    )
    assert [entry[0] for entry in iter_entries(resolved.path)] == [5, 1005]


def test_hub_address_without_a_file_is_refused(tmp_path: Path) -> None:
    from e6_assets.core.sources import SourceNotFound

    with pytest.raises(SourceNotFound, match="names no file"):
        resolve_universe("hf://datasets/someone/e621-latents@main", tmp_path)
