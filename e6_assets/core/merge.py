"""Merging captions into the id universe: ``meta_lat_v2.json`` and ``missing.json``.

The rule, per id of the universe (``meta_lat.json``), ascending numeric id:

- ``tags``: the entry's tags when a non-empty string, else the id is in ``missing["tags"]``;
- ``caption``: our caption when non-empty, else the id is in ``missing["caption"]`` and the caption
  falls back to the entry's tags (when there are any);
- ``train_resolution``: copied when present, else the id is in ``missing["latent"]``.

Keys are present only when they have a value, so an id with neither caption nor tags gets no
``caption`` key instead of a crash. Each shard's result is a fragment (``meta_json`` format, plus
three missing flags); the merged files are streamed from the 1000 fragments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from e6_assets.core.atomic import atomic_write_bytes
from e6_assets.core.layout import DataLayout
from e6_assets.core.meta_json import (
    indented_entry,
    json_string,
    merge_fragments,
    read_fragment,
    write_fragment,
)
from e6_assets.core.parquet_files import read_parquet
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.universe import StagedUniverse

MERGE_FRAGMENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("entry", pa.string()),
        ("missing_tags", pa.bool_()),
        ("missing_caption", pa.bool_()),
        ("missing_latent", pa.bool_()),
    ]
)
MISSING_KINDS = ("tags", "caption", "latent")
_COUNTS_KEY = b"e6_assets.merge_counts"
_UNIVERSE_KEY = b"e6_assets.universe_sha256"


@dataclass(frozen=True)
class MergeCounts:
    """The figures of the dataset card's merge log, for one shard or (summed) for the whole."""

    ids: int = 0
    missing_tags: int = 0
    missing_caption: int = 0
    missing_latent: int = 0

    def __add__(self, other: MergeCounts) -> MergeCounts:
        return MergeCounts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary_line(self) -> str:
        """The card's log line: ``ids: N, missing tags: a, missing caption: b, missing latent: c``."""
        return (
            f"ids: {self.ids}, missing tags: {self.missing_tags}, "
            f"missing caption: {self.missing_caption}, missing latent: {self.missing_latent}"
        )


def _resolution_json(width: int, height: int) -> str:
    """``[w, h]`` as ``json.dumps(indent=2)`` writes it two levels deep."""
    return f"[\n      {width},\n      {height}\n    ]"


def _non_empty(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.utf8_length(column), 0), False)


def merge_shard(universe: pa.Table, captions: pa.Table) -> tuple[pa.Table, MergeCounts]:
    """One shard's merge fragment and counts.

    ``universe``: ``id, tags, width, height`` (ascending, unique ids); ``captions``: ``id, caption``
    (the rearranged captions of the same shard, unique ids).
    """
    ids = universe.column("id")
    caption = captions.column("caption").take(pc.index_in(ids, value_set=captions.column("id")))
    tags = universe.column("tags")
    has_tags = _non_empty(tags)
    has_caption = _non_empty(caption)
    has_latent = pc.is_valid(universe.column("width"))
    final_caption = pc.if_else(has_caption, caption, pc.if_else(has_tags, tags, None))

    entries = []
    for post_id, tag_text, caption_text, width, height in zip(
        ids.to_pylist(),
        pc.if_else(has_tags, tags, None).to_pylist(),
        final_caption.to_pylist(),
        universe.column("width").to_pylist(),
        universe.column("height").to_pylist(),
        strict=True,
    ):
        fields = []
        if tag_text is not None:
            fields.append(("tags", json_string(tag_text)))
        if caption_text is not None:
            fields.append(("caption", json_string(caption_text)))
        if width is not None:
            fields.append(("train_resolution", _resolution_json(width, height)))
        entries.append(indented_entry(post_id, fields))

    missing = {
        "missing_tags": pc.invert(has_tags),
        "missing_caption": pc.invert(has_caption),
        "missing_latent": pc.invert(has_latent),
    }
    fragment = pa.table(
        {"id": ids, "entry": pa.array(entries, pa.string()), **missing}, schema=MERGE_FRAGMENT_SCHEMA
    )
    counts = MergeCounts(
        ids=fragment.num_rows,
        **{name: pc.sum(flags).as_py() or 0 for name, flags in missing.items()},
    )
    return fragment, counts


def write_merge_fragment(path: Path, fragment: pa.Table, counts: MergeCounts, universe_sha256: str) -> None:
    """Write a fragment (as ``meta_json`` writes its own, for the same merge) with its counts and the
    universe version in the Parquet footer."""
    write_fragment(
        path,
        fragment.replace_schema_metadata(
            {_COUNTS_KEY: json.dumps(counts.as_dict()).encode(), _UNIVERSE_KEY: universe_sha256.encode()}
        ),
    )


def read_merge_footer(path: Path) -> tuple[MergeCounts, str]:
    """The counts and universe sha256 stored in a merge fragment's footer."""
    metadata = pa.ipc.open_file(pa.memory_map(str(path))).schema.metadata or {}
    return MergeCounts(**json.loads(metadata[_COUNTS_KEY])), metadata[_UNIVERSE_KEY].decode()


def write_missing_json(fragments: Sequence[Path], out_path: Path) -> dict[str, int]:
    """``missing.json``: ``{"tags": [...], "caption": [...], "latent": [...]}``, string ids ascending.

    Only the flagged ids are kept in memory (at full scale a few hundred thousand at most).
    """
    found: dict[str, list[pa.Array]] = {kind: [] for kind in MISSING_KINDS}
    for path in fragments:
        table = read_fragment(path, ["id", *(f"missing_{kind}" for kind in MISSING_KINDS)])
        for kind in MISSING_KINDS:
            found[kind].append(table.column("id").filter(table.column(f"missing_{kind}")).combine_chunks())
    missing = {
        kind: [str(i) for i in sorted(pa.concat_arrays(arrays).to_pylist())] if arrays else []
        for kind, arrays in found.items()
    }
    atomic_write_bytes(out_path, json.dumps(missing, indent=2).encode())
    return {kind: len(ids) for kind, ids in missing.items()}


# --- the steps the assets run, as plain functions over a DataLayout --------------------------------


def merge_universe_shards(
    layout: DataLayout, staged: StagedUniverse, keys: Sequence[str]
) -> Iterator[tuple[str, MergeCounts]]:
    """Write ``meta_lat_v2/NNNN.arrow`` for each shard of ``keys``; yields ``(shard, counts)``."""
    for shard, universe in staged.iter_shard_tables([int(key) for key in keys]):
        key = SHARD_KEYS[shard]
        captions = read_parquet(layout.rearranged(key), ["id", "caption"])
        fragment, counts = merge_shard(universe, captions)
        write_merge_fragment(layout.meta_lat_fragment(key), fragment, counts, staged.sha256)
        yield key, counts


class MergeInputError(RuntimeError):
    """The merged files cannot be built from the shards as they are (missing or mixed shards)."""


@dataclass(frozen=True)
class MetaLatResult:
    merged: MergeCounts  # what meta_lat_v2.json and missing.json hold
    shards: MergeCounts  # the sums of the shards' figures
    universe_sha256: str


def merge_meta_lat(layout: DataLayout, workers: int = 1) -> MetaLatResult:
    """Write ``meta_lat_v2.json`` and ``missing.json`` from all 1000 fragments, and count both sides."""
    missing = layout.missing_meta_lat_fragments()
    if missing:
        raise MergeInputError(
            f"{len(missing)} shards have no meta_lat_v2 fragment yet (first: {missing[0]}); build "
            "meta_lat_v2_fragments for every shard (with E6_ID_UNIVERSE set) first"
        )
    fragments = [layout.meta_lat_fragment(key) for key in SHARD_KEYS]
    footers = [read_merge_footer(path) for path in fragments]
    versions = sorted({sha for _, sha in footers})
    if len(versions) > 1:
        raise MergeInputError(
            f"the shards were merged with {len(versions)} id universe versions "
            f"({', '.join(v[:12] for v in versions)}); rebuild meta_lat_v2_fragments for every shard"
        )
    ids = merge_fragments(fragments, layout.meta_lat_v2_json, workers)
    lists = write_missing_json(fragments, layout.missing_json)
    merged = MergeCounts(ids, lists["tags"], lists["caption"], lists["latent"])
    return MetaLatResult(merged, sum((counts for counts, _ in footers), MergeCounts()), versions[0])
