"""The recaption queue: the posts whose caption is only tags (or nothing), split into work lists.

The dataset card warns that nearly a million captions are tags, not sentences. The loop that
replaces them: export the queue as K work lists (``id % K``, one per GPU), caption the images
elsewhere, drop the captioner's JSONL into the overrides folder (``e6_assets.core.overrides``), and the
shards with new overrides are rebuilt.

A shard's queue (``recaption_queue/NNNN.parquet``, ``QUEUE_SCHEMA``, ascending id):

- without an id universe, the posts whose caption came from the tags (``reason`` ``tags``) or is
  empty (``empty``);
- with one, the universe's posts (those that have an image) whose caption is tags or empty, and those
  with no caption row at all (``no_caption``): the ids of ``missing.json``'s ``caption`` list and the
  tag-only captions of the merge. Posts without an image cannot be captioned from one.

Each row carries the current text (``caption``: what the trainer's metadata holds now, the tags for a
post of the universe without a caption), the post's ``tags``, and, when the source row has them, where
its image is: ``md5``, ``file_ext`` and ``file_url`` (the source's ``file_url``, else its ``url``).
Those fields are read back from the source line itself, through the line's offset recorded at
staging; they may hold anything in the source, so anything but a string is left out.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from e6_assets.core.atomic import atomic_path
from e6_assets.core.captions import EMPTY, TAGS, latest_row_per_id
from e6_assets.core.layout import DataLayout
from e6_assets.core.parallel import map_in_processes
from e6_assets.core.parquet_files import read_parquet, write_parquet
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.staging import BLOCK_SHARDS, StagedSource
from e6_assets.core.universe import StagedUniverse

NO_CAPTION = "no_caption"  # a post of the id universe with no caption row
LOCATION_FIELDS = ("md5", "file_ext", "file_url")
QUEUE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("reason", pa.string()),  # tags, empty or no_caption
        ("caption", pa.string()),
        ("tags", pa.string()),
        *((name, pa.string()) for name in LOCATION_FIELDS),
    ]
)
_COUNTS_KEY = b"e6_assets.queue_counts"


@dataclass(frozen=True)
class QueueCounts:
    """One shard's queue, and the share of its captions that are tags."""

    queued: int = 0
    tags: int = 0
    empty: int = 0
    no_caption: int = 0
    with_location: int = 0  # queued posts whose source row gave an md5 or a file URL
    captions: int = 0  # the shard's rearranged captions (posts with a source row, or an override)
    from_tags: int = 0

    @property
    def tag_only_share(self) -> float:
        return self.from_tags / self.captions if self.captions else 0.0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def read_locations(paths: dict[str, Path], rows: pa.Table) -> dict[str, list[str | None]]:
    """The location fields of each row (``id, source_file, offset``), read from its source line.

    A line that is gone (the file changed since it was staged: its id differs) gives none."""
    found: dict[str, list[str | None]] = {name: [None] * rows.num_rows for name in LOCATION_FIELDS}
    with contextlib.ExitStack() as stack:
        handles: dict[str, object] = {}
        for index, (post_id, name, offset) in enumerate(
            zip(*(rows.column(c).to_pylist() for c in ("id", "source_file", "offset")), strict=True)
        ):
            if name not in paths or offset is None:
                continue
            if name not in handles:
                try:
                    handles[name] = stack.enter_context(open(paths[name], "rb"))
                except OSError:
                    handles[name] = None
            handle = handles[name]
            if handle is None:
                continue
            handle.seek(offset)
            try:
                row = orjson.loads(handle.readline())
            except orjson.JSONDecodeError:
                continue
            if not isinstance(row, dict) or row.get("id") != post_id:
                continue
            found["md5"][index] = _text(row.get("md5"))
            found["file_ext"][index] = _text(row.get("file_ext"))
            found["file_url"][index] = _text(row.get("file_url")) or _text(row.get("url"))
    return found


def _queue_rows(captions: pa.Table, universe: pa.Table | None) -> pa.Table:
    """``id, reason, caption, tags`` of the queue, from the rearranged captions (and the universe)."""
    if universe is None:
        queued = captions.filter(pc.is_in(captions.column("caption_source"), pa.array([TAGS, EMPTY])))
        return pa.table(
            {
                "id": queued.column("id"),
                "reason": queued.column("caption_source"),
                "caption": queued.column("caption"),
                "tags": pa.nulls(queued.num_rows, pa.string()),
            }
        )
    ids = universe.column("id")
    position = pc.index_in(ids, value_set=captions.column("id"))
    source = captions.column("caption_source").take(position)
    reason = pc.if_else(pc.is_null(position), pa.scalar(NO_CAPTION), source)
    keep = pc.is_in(reason, pa.array([TAGS, EMPTY, NO_CAPTION]))
    universe_tags = pc.if_else(
        pc.greater(pc.utf8_length(universe.column("tags")), 0), universe.column("tags"), None
    )
    ours = captions.column("caption").take(position)
    # What meta_lat_v2.json holds: our caption when non-empty, else the universe's tags, else nothing.
    current = pc.if_else(pc.fill_null(pc.greater(pc.utf8_length(ours), 0), False), ours, universe_tags)
    return pa.table(
        {"id": ids, "reason": reason, "caption": pc.fill_null(current, ""), "tags": universe_tags}
    ).filter(keep)


def queue_shard(
    captions: pa.Table, source_rows: pa.Table, universe: pa.Table | None, paths: dict[str, Path]
) -> tuple[pa.Table, QueueCounts]:
    """One shard's queue and counts.

    ``captions``: the rearranged shard (``id, caption, caption_source``); ``source_rows``: its
    staged source rows (``id, tags, source_file, line, offset``, duplicates included); ``universe``:
    its part of the id universe, or None; ``paths``: the source files by name."""
    queue = _queue_rows(captions, universe)
    winners, _ = latest_row_per_id(source_rows.select(["id", "tags", "source_file", "line", "offset"]))
    position = pc.index_in(queue.column("id"), value_set=winners.column("id"))
    source_tags = winners.column("tags").take(position)
    tags = pc.coalesce(queue.column("tags"), source_tags)
    located = pa.table(
        {
            "id": queue.column("id"),
            "source_file": winners.column("source_file").take(position),
            "offset": winners.column("offset").take(position),
        }
    )
    locations = read_locations(paths, located)
    table = pa.table(
        {
            "id": queue.column("id"),
            "reason": queue.column("reason"),
            "caption": queue.column("caption"),
            "tags": tags,
            **{name: pa.array(values, pa.string()) for name, values in locations.items()},
        },
        schema=QUEUE_SCHEMA,
    )
    by_reason = {
        item["values"]: item["counts"] for item in pc.value_counts(table.column("reason")).to_pylist()
    }
    has_location = pc.or_(pc.is_valid(table.column("md5")), pc.is_valid(table.column("file_url")))
    counts = QueueCounts(
        queued=table.num_rows,
        tags=by_reason.get(TAGS, 0),
        empty=by_reason.get(EMPTY, 0),
        no_caption=by_reason.get(NO_CAPTION, 0),
        with_location=int(pc.sum(has_location).as_py() or 0),
        captions=captions.num_rows,
        from_tags=int(pc.sum(pc.equal(captions.column("caption_source"), TAGS)).as_py() or 0),
    )
    return table, counts


def _queue_block(
    layout: DataLayout, files: Sequence[Path], universe: StagedUniverse | None, keys: list[str]
) -> list[tuple[str, QueueCounts]]:
    """The queues of a block of shards: one read of the block's staged rows (and of its universe
    bucket: a bucket holds as many shards as a block)."""
    shards = [int(key) for key in keys]
    source = dict(StagedSource(files, layout.staged_dir).iter_shard_tables(shards))
    universes = dict(universe.iter_shard_tables(shards)) if universe is not None else {}
    paths = {path.name: path for path in files}
    done = []
    for key, shard in zip(keys, shards, strict=True):
        captions = read_parquet(layout.rearranged(key))
        table, counts = queue_shard(
            captions, source[shard], universes.get(shard) if universe else None, paths
        )
        table = table.replace_schema_metadata({_COUNTS_KEY: json.dumps(counts.as_dict()).encode()})
        write_parquet(layout.recaption_queue(key), table)
        done.append((key, counts))
    return done


def write_queues(
    layout: DataLayout,
    files: Sequence[Path],
    keys: Sequence[str],
    universe: StagedUniverse | None = None,
    workers: int = 1,
) -> Iterator[tuple[str, QueueCounts]]:
    """Write ``recaption_queue/NNNN.parquet`` for each shard of ``keys`` (the staged source must be
    current); yields ``(shard, counts)`` in shard order, a block of shards per task."""
    ordered = sorted(set(keys))
    blocks = [
        list(group) for _, group in itertools.groupby(ordered, key=lambda key: int(key) // BLOCK_SHARDS)
    ]
    work = functools.partial(_queue_block, layout, list(files), universe)
    for done in map_in_processes(work, blocks, workers):
        yield from done


def work_list_name(index: int, count: int) -> str:
    width = max(2, len(str(count - 1)))
    return f"work-{index:0{width}d}-of-{count:0{width}d}.jsonl"


def _json_line(row: dict) -> bytes:
    return orjson.dumps({key: value for key, value in row.items() if value is not None}) + b"\n"


@dataclass(frozen=True)
class WorkLists:
    paths: list[Path]
    counts: list[int]  # posts per list

    @property
    def total(self) -> int:
        return sum(self.counts)


class MissingQueues(RuntimeError):
    pass


def export_work_lists(layout: DataLayout, count: int) -> WorkLists:
    """Split the queue of all 1000 shards into ``count`` JSONL work lists, ``id % count``, under
    ``recaption/``: one object per post, shard by shard, ascending id within a shard. Lists of another
    ``count`` left by an earlier export are removed."""
    missing = layout.missing_recaption_queues()
    if missing:
        raise MissingQueues(
            f"{len(missing)} shards have no recaption queue yet (first: {missing[0]}); "
            "build recaption_queue for every shard first"
        )
    folder = layout.recaption_lists_dir
    paths = [folder / work_list_name(index, count) for index in range(count)]
    counts = [0] * count
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(atomic_path(path)) for path in paths]
        handles = [stack.enter_context(open(out, "wb")) for out in outs]
        for key in SHARD_KEYS:
            table = read_parquet(layout.recaption_queue(key))
            if not table.num_rows:
                continue
            lists = np.mod(table.column("id").to_numpy(), count)
            for row, index in zip(table.to_pylist(), lists.tolist(), strict=True):
                handles[index].write(_json_line({"id": row["id"], "shard": key, **row}))
                counts[index] += 1
        for handle in handles:
            handle.close()
    for stale in folder.glob("work-*.jsonl"):
        if stale not in paths:
            stale.unlink()
    return WorkLists(paths, counts)
