"""Helpers for the merge tests: captions for every shard without Dagster, and a plain reference merge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.merge import MergeCounts, merge_meta_lat, merge_universe_shards
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.sources import resolve_local
from e6_assets.core.universe import stage_universe


def write_rearranged(sample_dir: Path, layout: DataLayout) -> None:
    """The rearranged captions and meta_cap fragments of all 1000 shards, by the pipeline functions
    the caption assets run, without the cost of 1000 partitions of Dagster bookkeeping."""
    source = resolve_local(sample_dir)
    pipeline.stage(source, layout)
    for key, _, _ in pipeline.write_raw_shards(source, layout, SHARD_KEYS):
        pipeline.rearrange_shard(layout, key)


def copy_rearranged(prepared: Path, root: Path) -> DataLayout:
    for folder in ("rearranged", "meta_cap"):
        shutil.copytree(prepared / folder, root / folder)
    return DataLayout(root)


def captions_by_id(layout: DataLayout) -> dict[int, str]:
    captions: dict[int, str] = {}
    for key in SHARD_KEYS:
        table = pq.read_table(layout.rearranged(key), columns=["id", "caption"])
        captions.update(zip(table.column("id").to_pylist(), table.column("caption").to_pylist(), strict=True))
    return captions


def reference_merge(universe: dict, captions: dict[int, str]) -> tuple[dict, dict]:
    """The rule, written the plain way, over the whole universe in memory."""
    merged: dict[str, dict] = {}
    missing: dict[str, list[str]] = {"tags": [], "caption": [], "latent": []}
    for key in sorted(universe, key=int):
        entry, out = universe[key], {}
        tags = entry.get("tags")
        if isinstance(tags, str) and tags:
            out["tags"] = tags
        else:
            missing["tags"].append(key)
        caption = captions.get(int(key))
        if caption:
            out["caption"] = caption
        else:
            missing["caption"].append(key)
            if "tags" in out:
                out["caption"] = out["tags"]
        if entry.get("train_resolution") is not None:
            out["train_resolution"] = entry["train_resolution"]
        else:
            missing["latent"].append(key)
        merged[key] = out
    return merged, missing


def reference_counts(universe: dict, captions: dict[int, str]) -> MergeCounts:
    merged, missing = reference_merge(universe, captions)
    return MergeCounts(len(merged), len(missing["tags"]), len(missing["caption"]), len(missing["latent"]))


def fragments_without_dagster(layout: DataLayout, universe_path: Path, keys=SHARD_KEYS) -> list[MergeCounts]:
    """The merge fragments of ``keys``, by the functions the per-shard asset runs."""
    staged = stage_universe(universe_path, layout.universe_stage_dir).staged
    return [counts for _, counts in merge_universe_shards(layout, staged, keys)]


def merge_without_dagster(layout: DataLayout, universe_path: Path) -> list[MergeCounts]:
    """Every shard's fragment, then meta_lat_v2.json and missing.json; returns the per-shard counts."""
    staged = stage_universe(universe_path, layout.universe_stage_dir).staged
    per_shard = [counts for _, counts in merge_universe_shards(layout, staged, SHARD_KEYS)]
    result = merge_meta_lat(layout)
    assert result.merged == result.shards
    return per_shard


def read_json(path: Path):
    return json.loads(path.read_bytes())


_PREPARED: dict[Path, Path] = {}


def prepared_captions(sample_dir: Path, tmp_path_factory) -> Path:
    """A data root holding the sample's rearranged captions for all shards, built once per session."""
    if sample_dir not in _PREPARED:
        root = tmp_path_factory.mktemp("rearranged-all-shards")
        write_rearranged(sample_dir, DataLayout(root))
        _PREPARED[sample_dir] = root
    return _PREPARED[sample_dir]
