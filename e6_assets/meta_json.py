"""Trainer metadata JSON (kohya sd-scripts' ``meta_cap.json``), streamed.

Each shard keeps a *fragment*: its entries, ascending by id, already serialised exactly as
``json.dumps(..., indent=2)`` writes a member of the top-level object, one Parquet row group per id
band (``ID_BAND_BITS``). The merged file is written band by band: a band's rows are read from every
fragment, sorted by id and joined by Arrow into one buffer, in worker processes, while this process
writes the bands in order. Memory is bounded by a few bands, and the file is byte-identical to
``json.dumps(dict(sorted(entries)), indent=2)``.
"""

from __future__ import annotations

import functools
import resource
import tarfile
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import igzip

from e6_assets.atomic import atomic_open, atomic_path
from e6_assets.parallel import map_in_processes
from e6_assets.parquet_files import write_parquet_row_groups

FRAGMENT_SCHEMA = pa.schema([("id", pa.int64()), ("entry", pa.string())])
# Ids per band: 2**18 ids hold ~200k posts (~300 MB of entries at full scale) on the real id density.
ID_BAND_BITS = 18
_WRITE_CHUNK = 1 << 20
_SEPARATOR = b",\n"


def json_string(text: str) -> str:
    """A JSON string literal, as ``json.dumps`` writes it (ASCII, ``\\uXXXX`` escapes)."""
    return encode_basestring_ascii(text)


def indented_entry(post_id: int, fields: Sequence[tuple[str, str]]) -> str:
    """One member of the top-level object; ``fields`` are ``(key, already-encoded JSON value)``."""
    if not fields:
        return f'  "{post_id}": {{}}'
    body = ",\n".join(f'    "{key}": {value}' for key, value in fields)
    return f'  "{post_id}": {{\n{body}\n  }}'


def caption_entries(ids: pa.Array, captions: pa.Array) -> pa.Table:
    """The ``meta_cap.json`` fragment of one shard: ``{"<id>": {"caption": "<caption>"}}``."""
    entries = [
        indented_entry(post_id, [("caption", json_string(caption))])
        for post_id, caption in zip(ids.to_pylist(), captions.to_pylist(), strict=True)
    ]
    return pa.table({"id": ids, "entry": pa.array(entries, pa.string())}, schema=FRAGMENT_SCHEMA)


def write_fragment(path: Path, fragment: pa.Table) -> str:
    """Write a fragment (ascending ids), one row group per id band; returns its content version."""
    bands = np.right_shift(fragment.column("id").to_numpy(), ID_BAND_BITS)
    starts = [0, *(np.flatnonzero(np.diff(bands)) + 1).tolist()]
    return write_parquet_row_groups(path, fragment, starts)


def _allow_open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# A band of the merge: for each fragment holding ids of the band, its path and those row groups.
BandReads = list[tuple[Path, list[int]]]


def _plan_bands(fragments: Sequence[Path]) -> list[tuple[int, BandReads]]:
    """Which row groups of which fragments hold each band's ids, from the fragments' statistics.

    A row group spanning several bands (from a fragment written otherwise) is read for each of them
    and filtered: the plan is right for any row grouping, and cheapest for the one written above."""
    reads: dict[int, BandReads] = {}
    for path in fragments:
        metadata = pq.read_metadata(path)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            if row_group.num_rows == 0:
                continue
            stats = row_group.column(0).statistics
            for band in range(stats.min >> ID_BAND_BITS, (stats.max >> ID_BAND_BITS) + 1):
                band_reads = reads.setdefault(band, [])
                if band_reads and band_reads[-1][0] == path:
                    band_reads[-1][1].append(group)
                else:
                    band_reads.append((path, [group]))
    return sorted(reads.items())


@functools.cache
def _open_fragment(path: Path) -> pq.ParquetFile:
    # Kept open for the worker's life (one merge): each fragment is read once per band.
    return pq.ParquetFile(path)


def _band_text(band_and_reads: tuple[int, BandReads]) -> tuple[int, bytes]:
    """One band's entries, ascending by id, each followed by ``,\\n``; and how many there are."""
    band, band_reads = band_and_reads
    _allow_open_files(len(band_reads))
    parts = [
        _open_fragment(path).read_row_groups(groups, columns=["id", "entry"]) for path, groups in band_reads
    ]
    rows = pa.concat_tables(parts)
    ids = rows.column("id")
    in_band = pc.equal(pc.shift_right(ids, ID_BAND_BITS), band)
    rows = rows.filter(in_band).sort_by("id")
    if rows.num_rows == 0:
        return 0, b""
    entries = pc.binary_join_element_wise(rows.column("entry"), pa.scalar(_SEPARATOR.decode()), "")
    entries = entries.combine_chunks()
    _, offsets, data = entries.buffers()
    offsets = np.frombuffer(offsets, np.int32)[entries.offset : entries.offset + len(entries) + 1]
    return rows.num_rows, data[int(offsets[0]) : int(offsets[-1])].to_pybytes()


def merge_fragments(fragments: Sequence[Path], out_path: Path, workers: int = 1) -> int:
    """Write the merged JSON object of all fragments, keys ascending by id; returns the entry count.

    Ids must be unique across fragments (each id lives in one shard)."""
    count = 0
    with atomic_open(out_path, "wb") as out:
        out.write(b"{")
        for entries, text in map_in_processes(_band_text, _plan_bands(fragments), workers):
            if entries:
                # Each band ends with a separator: written before the next band instead.
                out.write(_SEPARATOR if count else b"\n")
                out.write(memoryview(text)[: -len(_SEPARATOR)])
                count += entries
        out.write(b"\n}" if count else b"}")
    return count


def write_tar_gz(member: Path, out_path: Path, compresslevel: int = 2) -> None:
    """A gzip tar holding ``member`` alone, reproducible: mtime 0 in the tar and in the gzip header."""
    info = tarfile.TarInfo(member.name)
    info.size = member.stat().st_size
    with (
        atomic_path(out_path) as tmp,
        open(tmp, "wb") as raw,
        # The final name goes into the gzip header, not the temporary one.
        igzip.IGzipFile(out_path.name, "wb", compresslevel=compresslevel, fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", copybufsize=_WRITE_CHUNK) as tar,
        open(member, "rb") as source,
    ):
        tar.addfile(info, source)
