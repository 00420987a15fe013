"""A columnar copy of the source, one Parquet file per monthly file, rows ordered by shard.

Parsing 7 GB of JSONL is the most expensive step of a build, so it happens once per source file:
a file is staged again only when its size or modification time changes. Reading a range of shards
then touches only the row groups of that range (their statistics on ``shard`` let Parquet skip the
rest), so rebuilding one shard does not rescan the JSONL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from e6_assets.atomic import atomic_path
from e6_assets.jsonl import read_month_file
from e6_assets.partitions import SHARD_COUNT

STAGE_FORMAT = "1"  # bump when the staged layout changes: every file is staged again
ROW_GROUP_ROWS = 2048
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
    ]
)


@dataclass(frozen=True)
class StagingReport:
    staged: list[str]  # source files parsed in this call
    reused: list[str]  # source files whose staged copy was still current
    rows_staged: int


def _fingerprint(source: Path) -> str:
    stat = source.stat()
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
    table = read_month_file(source)
    shard = np.mod(table.column("id").to_numpy(), SHARD_COUNT)  # Python's sign rule, like id % 1000
    table = table.append_column("shard", pa.array(shard, pa.int16()))
    table = table.append_column("source_file", pa.array([source.name] * table.num_rows, pa.string()))
    table = (
        table.select(RAW_SCHEMA.names)
        .cast(RAW_SCHEMA)
        .sort_by([("shard", "ascending"), ("line", "ascending")])
    )
    table = table.replace_schema_metadata({_FINGERPRINT_KEY: _fingerprint(source).encode()})
    with atomic_path(staged) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
    return table.num_rows


def stage_source(files: Sequence[Path], stage_dir: Path) -> StagingReport:
    """Bring the staged copy of every source file up to date."""
    staged, reused, rows = [], [], 0
    for source in files:
        target = _staged_path(stage_dir, source)
        if _is_current(target, _fingerprint(source)):
            reused.append(source.name)
        else:
            rows += stage_file(source, target)
            staged.append(source.name)
    return StagingReport(staged, reused, rows)


class StagedSource:
    """Reads ranges of shards from the staged copies of the given source files."""

    def __init__(self, files: Sequence[Path], stage_dir: Path):
        self._paths = [str(_staged_path(stage_dir, source)) for source in files]
        self._dataset = pa_ds.dataset(self._paths, schema=RAW_SCHEMA, format="parquet") if files else None

    def read_shards(self, first: int, last: int) -> pa.Table:
        """All source rows of shards ``first..last`` (inclusive), ordered by shard, file, line."""
        if self._dataset is None:
            return RAW_SCHEMA.empty_table()
        expression = (pa_ds.field("shard") >= first) & (pa_ds.field("shard") <= last)
        table = self._dataset.to_table(filter=expression)
        return table.sort_by([("shard", "ascending"), ("source_file", "ascending"), ("line", "ascending")])

    def iter_shard_tables(self, shards: Sequence[int], block: int = 50) -> Iterator[tuple[int, pa.Table]]:
        """Yield ``(shard, rows)`` for each of ``shards`` (ascending), reading ``block`` shards at a time.

        Reading a block at once keeps the number of Parquet reads small in a full build while the
        memory held stays around ``block / 1000`` of the source.
        """
        wanted = sorted(set(shards))
        for start in range(0, len(wanted), block):
            chunk = wanted[start : start + block]
            table = self.read_shards(chunk[0], chunk[-1])
            bounds = _shard_bounds(table.column("shard").to_numpy(), chunk)
            for shard, (lo, hi) in zip(chunk, bounds, strict=True):
                yield shard, table.slice(lo, hi - lo)


def _shard_bounds(shard_column: np.ndarray, shards: Sequence[int]) -> list[tuple[int, int]]:
    lows = np.searchsorted(shard_column, shards, side="left")
    highs = np.searchsorted(shard_column, shards, side="right")
    return list(zip(lows.tolist(), highs.tolist(), strict=True))
