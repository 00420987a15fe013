"""Helpers for the merge tests: captions for every shard without Dagster, and a plain reference merge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from e6_assets.assets.captions import _COUNTS_KEY as COUNTS_KEY
from e6_assets.captions import count_captions, latest_row_per_id, rearrange
from e6_assets.layout import DataLayout
from e6_assets.merge import MergeCounts, merge_shard, write_merge_fragment, write_missing_json
from e6_assets.meta_json import caption_entries, merge_fragments, write_fragment
from e6_assets.partitions import SHARD_COUNT, SHARD_KEYS
from e6_assets.sources import month_files_in
from e6_assets.staging import StagedSource, stage_source
from e6_assets.universe import stage_universe


def write_rearranged(sample_dir: Path, layout: DataLayout) -> None:
    """The rearranged captions (with their counts) and meta_cap fragments of all 1000 shards, by the
    same functions the caption assets call, without the cost of 1000 partitions of bookkeeping."""
    files = month_files_in(sample_dir)
    stage_source(files, layout.staged_dir)
    for shard, rows in StagedSource(files, layout.staged_dir).iter_shard_tables(range(SHARD_COUNT)):
        key = SHARD_KEYS[shard]
        latest, duplicates = latest_row_per_id(rows.drop_columns(["shard"]))
        captions = rearrange(latest)
        counts = json.dumps(count_captions(captions, duplicates).as_dict()).encode()
        path = layout.rearranged(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(captions.replace_schema_metadata({COUNTS_KEY: counts}), path)
        fragment = caption_entries(captions.column("id"), captions.column("caption"))
        fragment = fragment.append_column("caption_source", captions.column("caption_source"))
        write_fragment(layout.meta_cap_fragment(key), fragment)


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


def merge_without_dagster(layout: DataLayout, universe_path: Path) -> list[MergeCounts]:
    """Every shard's fragment, then meta_lat_v2.json and missing.json; returns the per-shard counts."""
    staged = stage_universe(universe_path, layout.universe_stage_dir).staged
    per_shard = []
    for shard, universe in staged.iter_shard_tables(range(SHARD_COUNT)):
        key = SHARD_KEYS[shard]
        fragment, counts = merge_shard(universe, pq.read_table(layout.rearranged(key)))
        write_merge_fragment(layout.meta_lat_fragment(key), fragment, counts, staged.sha256)
        per_shard.append(counts)
    fragments = [layout.meta_lat_fragment(key) for key in SHARD_KEYS]
    merge_fragments(fragments, layout.meta_lat_v2_json)
    write_missing_json(fragments, layout.missing_json)
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
