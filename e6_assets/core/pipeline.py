"""The build's steps as plain functions over a ``DataLayout``: what each asset runs for one shard.

The Dagster assets call these and record what they return; the benchmark and the tests call them
directly, so the data work can be timed and checked without Dagster.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from e6_assets.core.captions import (
    CaptionCounts,
    apply_overrides,
    count_captions,
    latest_row_per_id,
    rearrange,
)
from e6_assets.core.fingerprints import table_version
from e6_assets.core.layout import DataLayout
from e6_assets.core.meta_json import caption_entries, merge_fragments, read_fragment, write_fragment
from e6_assets.core.overrides import staged_overrides
from e6_assets.core.parallel import map_in_processes
from e6_assets.core.parquet_files import read_parquet, write_parquet
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.sources import ResolvedSource
from e6_assets.core.staging import (
    BLOCK_SHARDS,
    STAGING_COLUMNS,
    StagedSource,
    StagingReport,
    stage_source,
    stale_files,
)
from e6_assets.core.tars import TarIndex, index_problems, write_tar

_COUNTS_KEY = b"e6_assets.caption_counts"
Result = TypeVar("Result")


def files_to_stage(source: ResolvedSource, layout: DataLayout) -> list[Path]:
    """The source files whose staged copy is missing or out of date."""
    return stale_files(source.files, layout.staged_dir)


def stage(
    source: ResolvedSource,
    layout: DataLayout,
    workers: int = 1,
    stale: Sequence[Path] | None = None,
    on_file_staged: Callable[[int], None] | None = None,
) -> StagingReport:
    """Bring the staged columnar copy of the source up to date (only changed files are parsed:
    ``stale``, when already known); ``on_file_staged(rows)`` is called as each file is done."""
    return stage_source(source.files, layout.staged_dir, workers, stale, on_file_staged)


def source_version(rows: pa.Table) -> str:
    """The content version of a shard's staged source rows (without ``STAGING_COLUMNS``): what
    ``caption_source`` records per shard, and what ``raw_captions`` records it was built from."""
    return table_version(rows)


def _write_raw_block(
    files: Sequence[Path], layout: DataLayout, shards: list[int]
) -> list[tuple[str, int, str]]:
    staged, written = StagedSource(files, layout.staged_dir), []
    for shard, rows in staged.iter_shard_tables(shards):
        key, rows = SHARD_KEYS[shard], rows.drop_columns(STAGING_COLUMNS)
        write_parquet(layout.raw(key), rows)
        written.append((key, rows.num_rows, source_version(rows)))
    return written


def write_raw_shards(
    source: ResolvedSource, layout: DataLayout, keys: Sequence[str], workers: int = 1
) -> Iterator[tuple[str, int, str]]:
    """Write ``raw/NNNN.parquet`` for each shard of ``keys``, a block of shards (one row group of each
    staged file) per task; yields ``(shard, rows, source_version)`` in shard order."""
    shards = sorted({int(key) for key in keys})
    blocks = [list(group) for _, group in itertools.groupby(shards, key=lambda shard: shard // BLOCK_SHARDS)]
    write_block = functools.partial(_write_raw_block, list(source.files), layout)
    for written in map_in_processes(write_block, blocks, workers):
        yield from written


def source_versions(source: ResolvedSource, layout: DataLayout) -> dict[str, str]:
    """The source version of each of the 1000 shards, from the staged copy (stage it first)."""
    staged = StagedSource(source.files, layout.staged_dir)
    return {
        SHARD_KEYS[shard]: source_version(rows.drop_columns(STAGING_COLUMNS))
        for shard, rows in staged.iter_shard_tables(range(len(SHARD_KEYS)))
    }


def map_shards(
    step: Callable[[DataLayout, str], Result], layout: DataLayout, keys: Sequence[str], workers: int = 1
) -> Iterator[tuple[str, Result]]:
    """``(key, step(layout, key))`` for each shard of ``keys``, in order, over ``workers`` processes."""
    yield from zip(keys, map_in_processes(functools.partial(step, layout), keys, workers), strict=True)


def write_meta_cap_fragment(layout: DataLayout, key: str, captions: pa.Table) -> None:
    """The shard's entries of ``meta_cap.json``, from its rearranged rows."""
    fragment = caption_entries(captions.column("id"), captions.column("caption"))
    fragment = fragment.append_column("caption_source", captions.column("caption_source"))
    write_fragment(layout.meta_cap_fragment(key), fragment)


def rearrange_shard(layout: DataLayout, key: str) -> tuple[CaptionCounts, str]:
    """De-duplicate the shard's raw rows, apply the caption rule (and the shard's staged caption
    overrides, if it has any), write ``rearranged/NNNN.parquet`` and the shard's ``meta_cap.json``
    entries, ``meta_cap/NNNN.arrow`` (the fragment the merge reads), from the same rows in memory.

    Returns the shard's caption counts and the content version of the rearranged file."""
    rows, duplicates = latest_row_per_id(read_parquet(layout.raw(key)))
    captions = rearrange(rows)
    overrides = staged_overrides(layout, key)
    if overrides is not None:
        captions = apply_overrides(captions, overrides)
    counts = count_captions(captions, duplicates, overrides)
    write_meta_cap_fragment(layout, key, captions)
    captions = captions.replace_schema_metadata({_COUNTS_KEY: json.dumps(counts.to_json_dict()).encode()})
    return counts, write_parquet(layout.rearranged(key), captions)


def read_counts(layout: DataLayout, key: str) -> CaptionCounts:
    """The caption counts stored in a rearranged shard's Parquet footer."""
    metadata = pq.read_schema(layout.rearranged(key)).metadata or {}
    return CaptionCounts(**json.loads(metadata[_COUNTS_KEY]))


@dataclass(frozen=True)
class TarResult:
    index: TarIndex
    non_empty_captions: int
    problems: list[str]  # empty when the tar and its index agree with the captions

    @property
    def version(self) -> str:
        return self.index.hash_lfs  # the tar's sha256


def tar_shard(layout: DataLayout, key: str) -> TarResult:
    """Write ``captions/NNNN.tar`` and its index, then read both back to verify them."""
    captions = read_parquet(layout.rearranged(key), ["id", "caption"])
    captions = captions.filter(pc.not_equal(captions.column("caption"), ""))
    ids, texts = captions.column("id").to_pylist(), captions.column("caption").to_pylist()
    members = ((f"{post_id}.caption", text.encode()) for post_id, text in zip(ids, texts, strict=True))
    write_tar(layout.tar(key), layout.tar_index(key), members)
    index = TarIndex.from_json(layout.tar_index(key).read_bytes())
    problems = index_problems(layout.tar(key), index)
    if len(index.files) != captions.num_rows:
        problems.insert(0, f"{len(index.files)} members for {captions.num_rows} non-empty captions")
    return TarResult(index, captions.num_rows, problems)


@dataclass(frozen=True)
class MetaCapResult:
    merged: dict[str, int]  # what the merged file holds
    shards: CaptionCounts  # the sums of the shards' caption counts

    @property
    def totals_match(self) -> bool:
        return all(value == getattr(self.shards, name) for name, value in self.merged.items())


class MissingShards(RuntimeError):
    pass


def merge_meta_cap(layout: DataLayout, workers: int = 1) -> MetaCapResult:
    """Write ``meta_cap.json`` and ``meta_cap.tar.gz`` from all 1000 fragments, and count both sides."""
    missing = layout.missing_fragments()
    if missing:
        raise MissingShards(
            f"{len(missing)} shards have no meta_cap fragment yet (first: {missing[0]}); "
            "build every shard before the merged file"
        )
    fragments = [layout.meta_cap_fragment(key) for key in SHARD_KEYS]
    entries = merge_fragments(fragments, layout.meta_cap_json, workers, archive=layout.meta_cap_tar_gz)
    by_source: collections.Counter[str] = collections.Counter()
    for path in fragments:  # counted fragment by fragment: each is released before the next is read
        for item in pc.value_counts(read_fragment(path, ["caption_source"]).column(0)).to_pylist():
            by_source[item["values"]] += item["counts"]
    merged = {
        "rows": entries,
        "from_summary": by_source.get("summary", 0),
        "from_tags": by_source.get("tags", 0),
        "empty": by_source.get("empty", 0),
        "from_override": by_source.get("override", 0),
    }
    shards = sum((read_counts(layout, key) for key in SHARD_KEYS), CaptionCounts())
    return MetaCapResult(merged, shards)


def build(
    source: ResolvedSource, layout: DataLayout, keys: Sequence[str] = SHARD_KEYS, workers: int = 1
) -> CaptionCounts:
    """Every step for ``keys`` and, when all shards exist, the merged files; returns the shards' totals."""
    stage(source, layout, workers)
    for _ in write_raw_shards(source, layout, keys, workers):
        pass
    totals = sum(
        (counts for _, (counts, _) in map_shards(rearrange_shard, layout, keys, workers)), CaptionCounts()
    )
    for key, result in map_shards(tar_shard, layout, keys, workers):
        if result.problems:
            raise RuntimeError(f"shard {key}: {'; '.join(result.problems)}")
    if not layout.missing_fragments():
        merge_meta_cap(layout, workers)
    return totals
