"""Helpers for the publish tests: a built sample, the client pointed at the fake Hub, a changed shard."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.parquet_files import read_parquet
from e6_assets.core.sources import resolve_local

TOKEN = "hf_e6TestTokenThatMustNeverBeLogged"

_BUILT: dict[Path, Path] = {}


def built_sample(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    """The whole sample built by the pipeline (all 1000 shards and meta_cap), once per session.
    Tests that change it work on a ``copy_of`` it."""
    if sample_dir not in _BUILT:
        root = tmp_path_factory.mktemp("built-sample") / "data"
        pipeline.build(resolve_local(sample_dir), DataLayout(root))
        _BUILT[sample_dir] = root
    return DataLayout(_BUILT[sample_dir])


def copy_of(layout: DataLayout, root: Path) -> DataLayout:
    shutil.copytree(layout.root, root, ignore=shutil.ignore_patterns("staged", "raw"))
    return DataLayout(root)


def client_online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real huggingface_hub client, as a process started with ``HF_HUB_DISABLE_XET=1``,
    ``HF_TOKEN`` set and no ``HF_HUB_OFFLINE`` would see it (the suite runs offline, and
    huggingface_hub reads these once, at import). Only settings change: no function is replaced."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # (The progress bars module keeps its own copy of that setting; its name is shadowed by a class.)
    progress_bars = importlib.import_module("huggingface_hub.utils.tqdm")
    monkeypatch.setattr(progress_bars, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)


def change_a_caption(layout: DataLayout, key: str) -> None:
    """Edit one caption of shard ``key`` and rebuild what depends on it (its tar, index and
    fragment, then meta_cap), as a source update touching one post would."""
    path = layout.rearranged(key)
    table = read_parquet(path)
    captions = table.column("caption").to_pylist()
    first = next(i for i, caption in enumerate(captions) if caption)
    captions[first] += " (corrected)"
    table = table.set_column(table.schema.get_field_index("caption"), "caption", [captions])
    pq.write_table(table.replace_schema_metadata(pq.read_schema(path).metadata), path)
    pipeline.tar_shard(layout, key)
    pipeline.write_meta_cap_fragment(layout, key, table)
    pipeline.merge_meta_cap(layout)
