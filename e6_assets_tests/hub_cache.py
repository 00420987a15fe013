"""Lay out a Hugging Face Hub cache on disk, as huggingface_hub itself leaves it after a download."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lay_out_dataset(
    cache: Path, repo_id: str, files: dict[str, bytes], commit: str, ref: str = "main"
) -> Path:
    """Write ``files`` as dataset ``repo_id`` at ``commit``, ``ref`` pointing at it; return the snapshot."""
    storage = cache / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (storage / "blobs").mkdir(exist_ok=True)
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / ref).write_text(commit)
    tree = {}
    for name, data in files.items():
        sha256 = hashlib.sha256(data).hexdigest()
        (storage / "blobs" / sha256).write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(storage / "blobs" / sha256, link.parent))
        tree[name] = {
            "size": len(data),
            "blob_id": git_blob_sha1(data),
            "lfs_sha256": sha256,
            "lfs_size": len(data),
        }
    (storage / "trees").mkdir(exist_ok=True)
    (storage / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": tree}))
    return snapshot
