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

import collections
import functools
import io
import itertools
import json
import os
import resource
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip

from e6_assets.core.atomic import atomic_path
from e6_assets.core.parallel import map_in_processes

FRAGMENT_SCHEMA = pa.schema([("id", pa.int64()), ("entry", pa.string())])
# Ids per band: 2**18 ids hold ~200k posts (~130 MB of entries at full scale) on the real id density.
ID_BAND_BITS = 18
_WRITE_CHUNK = 1 << 20
_ROWS_PER_WRITE = 1 << 14  # ~10 MB of entries at full scale
_SEPARATOR = b",\n"
_OPEN, _CLOSE = b"{\n", b"\n}"  # around the members of a non-empty object
_BANDS_KEY = b"e6.bands"


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
    per id band, as an uncompressed Arrow IPC file: it is read once, by the merge. Its schema
    metadata lists each batch's band, entries and bytes of text, so the merge plans from the footers."""
    bands = fragment.column("id").to_numpy() >> ID_BAND_BITS
    starts = [0, *(np.flatnonzero(np.diff(bands)) + 1).tolist(), fragment.num_rows]
    spans = [(start, stop) for start, stop in itertools.pairwise(starts) if stop > start]
    pieces = [fragment.slice(start, stop - start) for start, stop in spans]
    listed = [
        [int(bands[start]), piece.num_rows, _text_bytes(piece.column("entry"))]
        for (start, _), piece in zip(spans, pieces, strict=True)
    ]
    schema = fragment.schema.with_metadata(
        {**(fragment.schema.metadata or {}), _BANDS_KEY: json.dumps(listed).encode()}
    )
    with atomic_path(path) as tmp, pa.ipc.new_file(str(tmp), schema) as writer:
        for piece in pieces:
            writer.write_table(piece, max_chunksize=piece.num_rows)


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


def _text_bytes(strings: pa.ChunkedArray) -> int:
    """Bytes of text in a string column (its values, not its offsets)."""
    return sum(stop - start for start, stop in map(_value_span, strings.chunks))


def _plan_bands(fragments: Sequence[Path]) -> tuple[list[Band], int]:
    """The bands of the merged file, and its size, from the band list in each fragment's footer."""
    found: dict[int, tuple[list[tuple[Path, int]], int, int]] = {}
    for path in fragments:
        metadata = pa.ipc.open_file(pa.memory_map(str(path))).schema.metadata or {}
        if _BANDS_KEY not in metadata:
            raise FragmentError(f"{path}: written by an earlier version (no band list); rebuild the shard")
        for index, (band, rows, size) in enumerate(json.loads(metadata[_BANDS_KEY])):
            batches, entries, total = found.get(band, ([], 0, 0))
            batches.append((path, index))
            found[band] = (batches, entries + rows, total + size)
    bands, offset = [], len(_OPEN)
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


def _write_bands(path: Path, bands: list[Band], end: int, workers: int) -> Iterator[int]:
    """Write every band into ``path`` (``end`` bytes, made beforehand) over ``workers`` processes.

    Bands finish in order; after each, yields how many bytes from the file's start are final. The
    last band's final separator becomes the object's end, after which the whole file is final."""
    for band, following, written in zip(
        bands,
        [*(band.offset for band in bands[1:]), None],
        map_in_processes(functools.partial(_write_band, path), bands, workers),
        strict=True,
    ):
        if written != band.entries:
            raise FragmentError(f"band {band.band}: wrote {written} entries of {band.entries}")
        if following is not None:
            yield following
    with open(path, "r+b") as out:
        out.seek(end - len(_SEPARATOR))
        out.write(_CLOSE)
    yield end


class _FinalPrefix(io.RawIOBase):
    """A file read from its start up to what ``progress`` says is final, waiting for more (by
    advancing ``progress``) when the reader gets there: the archive of the merged file is compressed
    in this process while worker processes write the bands that follow."""

    def __init__(self, path: Path, progress: Iterator[int]):
        self._fd = os.open(path, os.O_RDONLY)
        self._progress, self._final, self._position = progress, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while self._position == self._final:
            self._final = next(self._progress, self._final)
            if self._position == self._final:
                return 0  # the whole file has been read
        data = os.pread(self._fd, min(len(buffer), self._final - self._position), self._position)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def merge_fragments(
    fragments: Sequence[Path], out_path: Path, workers: int = 1, archive: Path | None = None
) -> int:
    """Write the merged JSON object of all fragments, keys ascending by id, and with ``archive``
    its ``write_tar_gz`` archive (the same bytes, compressed while the later bands are written);
    returns the entry count.

    Ids must be unique across fragments (each id lives in one shard)."""
    bands, end = _plan_bands(fragments)
    count = sum(band.entries for band in bands)
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as out:
            out.write(_OPEN if count else b"{}")
            out.truncate(end if count else 2)
        progress = _write_bands(tmp, bands, end, workers) if count else iter([2])
        if archive is None:
            collections.deque(progress, maxlen=0)
        else:
            # Buffered: tarfile takes a short read for the end of the data.
            with io.BufferedReader(_FinalPrefix(tmp, progress), _WRITE_CHUNK) as merged:
                _write_tar_gz(out_path.name, end if count else 2, merged, archive)
    return count


def write_tar_gz(member: Path, out_path: Path) -> None:
    """A gzip tar holding ``member`` alone, reproducible: mtime 0 in the tar and in the gzip header."""
    with open(member, "rb") as source:
        _write_tar_gz(member.name, member.stat().st_size, source, out_path)


def _write_tar_gz(name: str, size: int, source: BinaryIO, out_path: Path, compresslevel: int = 2) -> None:
    """``write_tar_gz`` of ``size`` bytes read from ``source``, stored as ``name``."""
    info = tarfile.TarInfo(name)
    info.size = size
    with (
        atomic_path(out_path) as tmp,
        open(tmp, "wb") as raw,
        # The final name goes into the gzip header, not the temporary one.
        igzip.IGzipFile(out_path.name, "wb", compresslevel=compresslevel, fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", copybufsize=_WRITE_CHUNK) as tar,
    ):
        tar.addfile(info, source)
