"""Trainer metadata JSON (kohya sd-scripts' ``meta_cap.json``), streamed.

Each shard keeps a *fragment*: its entries, ascending by id, already serialised exactly as
``json.dumps(..., indent=2)`` writes a member of the top-level object, in an Arrow IPC file with one
record batch per id band (``ID_BAND_BITS``). Read through a memory map, a batch costs no parsing or
decompression. The merged file's size, and where each band's text goes in it, follow from the
entries' lengths alone; so each band is written in place by a worker process (its batches from
all fragments, sorted by id, joined by Arrow into one buffer) while the others write theirs. Memory
is bounded by a band per worker, and the file is byte-identical to
``json.dumps(dict(sorted(entries)), indent=2)``.
"""

from __future__ import annotations

import functools
import itertools
import os
import resource
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip

from e6_assets.atomic import atomic_path
from e6_assets.parallel import map_in_processes

FRAGMENT_SCHEMA = pa.schema([("id", pa.int64()), ("entry", pa.string())])
# Ids per band: 2**18 ids hold ~200k posts (~130 MB of entries at full scale) on the real id density.
ID_BAND_BITS = 18
_WRITE_CHUNK = 1 << 20
_ROWS_PER_WRITE = 1 << 14  # ~10 MB of entries at full scale
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


def write_fragment(path: Path, fragment: pa.Table) -> None:
    """Write a fragment (ascending ids; more columns and schema metadata are kept), one record batch
    per id band, as an uncompressed Arrow IPC file: it is read once, by the merge."""
    bands = np.right_shift(fragment.column("id").to_numpy(), ID_BAND_BITS)
    starts = [0, *(np.flatnonzero(np.diff(bands)) + 1).tolist(), fragment.num_rows]
    with atomic_path(path) as tmp, pa.ipc.new_file(str(tmp), fragment.schema) as writer:
        for start, stop in itertools.pairwise(starts):
            if stop > start:
                writer.write_table(fragment.slice(start, stop - start), max_chunksize=stop - start)


def read_fragment(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """A fragment's rows (of ``columns``), memory-mapped; ``.schema.metadata`` has its metadata.

    The columns share the file's mapping: keep what is needed of them (a count, a filtered copy),
    not the table, or every fragment read stays resident."""
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return table.select(columns) if columns is not None else table


def _allow_open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@dataclass(frozen=True)
class Band:
    """One band of the merged file: which record batch of which fragments hold its ids, how many
    entries it has, and where its text starts in the file."""

    band: int
    batches: list[tuple[Path, int]]
    entries: int
    offset: int


def _value_span(strings: pa.Array) -> tuple[int, int]:
    """Where a string array's values start and end in its data buffer, from its offsets."""
    offsets = np.frombuffer(strings.buffers()[1], np.int32)
    return int(offsets[strings.offset]), int(offsets[strings.offset + len(strings)])


class FragmentError(RuntimeError):
    """A fragment that was not written by ``write_fragment`` (as of this version)."""


def _plan_bands(fragments: Sequence[Path]) -> tuple[list[Band], int]:
    """The bands of the merged file, and its size, from the fragments' batches and their lengths."""
    found: dict[int, tuple[list[tuple[Path, int]], int, int]] = {}
    for path in fragments:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        for index in range(reader.num_record_batches):
            batch = reader.get_batch(index)
            ids = batch.column(0)
            band = ids[0].as_py() >> ID_BAND_BITS
            if ids[len(ids) - 1].as_py() >> ID_BAND_BITS != band:
                raise FragmentError(f"{path}: record batch {index} spans id bands; rebuild the shard")
            batches, entries, size = found.get(band, ([], 0, 0))
            batches.append((path, index))
            start, stop = _value_span(batch.column(1))
            found[band] = (batches, entries + len(ids), size + stop - start)
    bands, offset = [], 2  # after "{\n"
    for band, (batches, entries, size) in sorted(found.items()):
        bands.append(Band(band, batches, entries, offset))
        offset += size + len(_SEPARATOR) * entries  # each entry followed by a separator
    return bands, offset


def _write_band(out_path: Path, band: Band) -> int:
    """Write one band's entries, ascending by id and each followed by a separator, at its offset.

    The band's text is put together and written ``_ROWS_PER_WRITE`` entries at a time, so a worker
    holds the band's entries once (gathered from the fragments' mappings) and a slice of the text."""
    _allow_open_files(len(band.batches))
    batches = [pa.ipc.open_file(pa.memory_map(str(path))).get_batch(index) for path, index in band.batches]
    order = pc.sort_indices(pa.chunked_array([batch.column("id") for batch in batches]))
    entries = pa.concat_arrays([batch.column("entry") for batch in batches])
    separator = pa.scalar(_SEPARATOR.decode())
    with open(out_path, "r+b") as out:
        offset = band.offset
        for start in range(0, len(order), _ROWS_PER_WRITE):
            part = entries.take(order[start : start + _ROWS_PER_WRITE])
            text = pc.binary_join_element_wise(part, separator, "")
            begin, stop = _value_span(text)
            offset = _pwrite_all(out.fileno(), memoryview(text.buffers()[2])[begin:stop], offset)
    return len(order)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> int:
    """Write all of ``data`` at ``offset`` (pwrite may write less than asked); the offset after it."""
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written
    return offset


def merge_fragments(fragments: Sequence[Path], out_path: Path, workers: int = 1) -> int:
    """Write the merged JSON object of all fragments, keys ascending by id; returns the entry count.

    Ids must be unique across fragments (each id lives in one shard)."""
    bands, end = _plan_bands(fragments)
    count = sum(band.entries for band in bands)
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as out:
            if not count:
                out.write(b"{}")
                return 0
            out.write(b"{\n")
            out.truncate(end)
        written = sum(map_in_processes(functools.partial(_write_band, tmp), bands, workers))
        if written != count:
            raise FragmentError(f"wrote {written} entries of {count}")
        with open(tmp, "r+b") as out:  # the last entry's separator becomes the object's end
            out.seek(end - len(_SEPARATOR))
            out.write(b"\n}")
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
