"""A columnar copy of the source, one Parquet file per monthly file, rows ordered by shard.

Parsing the JSONL is the most expensive step of a build, so it happens once per source file: a file
is staged again only when its size or modification time changes. Each staged file holds one row group
per block of ``BLOCK_SHARDS`` shards, so reading a block of shards reads one row group of each file,
and rebuilding one shard reads ``BLOCK_SHARDS / 1000`` of the staged data instead of rescanning the
JSONL.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from e6_assets.core.atomic import atomic_path
from e6_assets.core.jsonl import read_month_file, source_stat
from e6_assets.core.parallel import map_in_processes
from e6_assets.core.shards import SHARD_COUNT

STAGE_FORMAT = "3"  # bump when the staged layout changes: every file is staged again
BLOCK_SHARDS = 50  # shards per row group: 20 row groups per staged file
_FINGERPRINT_KEY = b"e6_assets.source_fingerprint"

RAW_SCHEMA = pa.schema(
    [
        ("shard", pa.int16()),
        ("id", pa.int64()),
        ("tags", pa.string()),
        ("regular_summary", pa.string()),
        ("brief_summary", pa.string()),
        ("response_finish_reason", pa.string()),
        ("source_file", pa.string()),
        ("line", pa.int32()),
        ("offset", pa.int64()),  # where the row's line starts in the source file (not part of raw/)
    ]
)
# The staged columns that are not the source's rows: left out of raw/ and of the shards' versions.
STAGING_COLUMNS = ["shard", "offset"]


@dataclass(frozen=True)
class StagingReport:
    staged: list[str]  # source files parsed in this call
    reused: list[str]  # source files whose staged copy was still current
    rows_staged: int


def _fingerprint(source: Path) -> str:
    stat = source_stat(source)  # a SourceError naming the file when it is gone or unreadable
    return f"{STAGE_FORMAT}:{stat.st_size}:{stat.st_mtime_ns}"


def _staged_path(stage_dir: Path, source: Path) -> Path:
    return stage_dir / f"{source.name.removesuffix('.jsonl')}.parquet"


def _is_current(staged: Path, fingerprint: str) -> bool:
    try:
        metadata = pq.read_schema(staged).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return metadata.get(_FINGERPRINT_KEY) == fingerprint.encode()


def stage_file(source: Path, staged: Path) -> int:
    """Parse one monthly file into its staged Parquet copy; returns the number of rows."""
    table = read_month_file(source, with_offsets=True)
    shard = np.mod(table.column("id").to_numpy(), SHARD_COUNT)  # Python's sign rule, like id % 1000
    table = table.append_column("shard", pa.array(shard, pa.int16()))
    table = table.append_column("source_file", pa.array([source.name] * table.num_rows, pa.string()))
    table = (
        table.select(RAW_SCHEMA.names)
        .cast(RAW_SCHEMA)
        .sort_by([("shard", "ascending"), ("line", "ascending")])
    )
    table = table.replace_schema_metadata({_FINGERPRINT_KEY: _fingerprint(source).encode()})
    bounds = np.searchsorted(table.column("shard").to_numpy(), range(0, SHARD_COUNT + 1, BLOCK_SHARDS))
    with atomic_path(staged) as tmp, pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
        for lo, hi in itertools.pairwise(bounds.tolist()):
            writer.write_table(table.slice(lo, hi - lo), row_group_size=max(1, hi - lo))
    return table.num_rows


def _stage_into(stage_dir: Path, source: Path) -> int:
    return stage_file(source, _staged_path(stage_dir, source))


def stale_files(files: Sequence[Path], stage_dir: Path) -> list[Path]:
    """The files of ``files`` whose staged copy is missing or was made from another version."""
    return [
        source for source in files if not _is_current(_staged_path(stage_dir, source), _fingerprint(source))
    ]


def stage_source(
    files: Sequence[Path],
    stage_dir: Path,
    workers: int = 1,
    stale: Sequence[Path] | None = None,
    on_file_staged: Callable[[int], None] | None = None,
) -> StagingReport:
    """Bring the staged copy of every source file up to date, ``workers`` files at a time."""
    stale = stale_files(files, stage_dir) if stale is None else stale
    rows = 0
    for file_rows in map_in_processes(functools.partial(_stage_into, stage_dir), stale, workers):
        rows += file_rows
        if on_file_staged:
            on_file_staged(file_rows)
    stale_names = {source.name for source in stale}
    reused = [source.name for source in files if source.name not in stale_names]
    return StagingReport([source.name for source in stale], reused, rows)


class StagedSource:
    """Reads blocks of shards from the staged copies of the given source files."""

    def __init__(self, files: Sequence[Path], stage_dir: Path):
        self._paths = [_staged_path(stage_dir, source) for source in files]

    def read_block(self, block: int, shards: Sequence[int] | None = None) -> pa.Table:
        """The rows of one block of shards (of ``shards`` only, if given), by shard, file and line."""
        parts = []
        for path in self._paths:  # file name order, each file ordered by shard then line
            with pq.ParquetFile(path) as staged:
                parts.append(staged.read_row_group(block))
        # The staged files' own metadata (their source fingerprints) is not part of the rows.
        table = pa.concat_tables(parts).replace_schema_metadata(None) if parts else RAW_SCHEMA.empty_table()
        if shards is not None:
            table = table.filter(pc.is_in(table.column("shard"), pa.array(shards, pa.int16())))
        # Arrow's sort is stable: within a shard, rows stay in file order, then line order.
        return table.take(pc.sort_indices(table, [("shard", "ascending")]))

    def iter_shard_tables(self, shards: Sequence[int]) -> Iterator[tuple[int, pa.Table]]:
        """Yield ``(shard, rows)`` for each of ``shards``, ascending, reading one block at a time."""
        wanted = sorted(set(shards))
        for block, group in itertools.groupby(wanted, key=lambda shard: shard // BLOCK_SHARDS):
            chunk = list(group)
            table = self.read_block(block, None if len(chunk) == BLOCK_SHARDS else chunk)
            bounds = _shard_bounds(table.column("shard").to_numpy(), chunk)
            for shard, (lo, hi) in zip(chunk, bounds, strict=True):
                yield shard, table.slice(lo, hi - lo)


def _shard_bounds(shard_column: np.ndarray, shards: Sequence[int]) -> list[tuple[int, int]]:
    lows = np.searchsorted(shard_column, shards, side="left")
    highs = np.searchsorted(shard_column, shards, side="right")
    return list(zip(lows.tolist(), highs.tolist(), strict=True))
