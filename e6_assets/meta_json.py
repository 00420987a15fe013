"""Trainer metadata JSON (kohya sd-scripts' ``meta_cap.json``), streamed.

Each shard keeps a *fragment*: its entries, ascending by id, already serialised exactly as
``json.dumps(..., indent=2)`` writes a member of the top-level object. The merged file is then a
k-way merge of the 1000 fragments by id, written in chunks, so it is never whole in memory and is
byte-identical to ``json.dumps(dict(sorted(entries)), indent=2)``.
"""

from __future__ import annotations

import heapq
import resource
import tarfile
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip

from e6_assets.atomic import atomic_open, atomic_path
from e6_assets.parquet_files import write_parquet

FRAGMENT_SCHEMA = pa.schema([("id", pa.int64()), ("entry", pa.string())])
_BATCH_ROWS = 256  # per open fragment during the merge: 1000 x 256 entries in memory at most
_WRITE_CHUNK = 1 << 20


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
    """Write a fragment; returns its content version (small row groups: the merge holds one row
    group of each of the 1000 open fragments at a time)."""
    return write_parquet(path, fragment, row_group_size=_BATCH_ROWS)


def _fragment_entries(path: Path) -> Iterator[tuple[int, str]]:
    with pq.ParquetFile(path) as fragment:
        for batch in fragment.iter_batches(batch_size=_BATCH_ROWS, columns=["id", "entry"]):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)


def _allow_open_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def merge_fragments(fragments: Sequence[Path], out_path: Path) -> int:
    """Write the merged JSON object of all fragments, keys ascending by id; returns the entry count."""
    _allow_open_files(len(fragments))
    merged = heapq.merge(*(_fragment_entries(path) for path in fragments))
    count = 0
    with atomic_open(out_path, "w") as out:
        out.write("{")
        pending: list[str] = []
        size = 0
        for _, entry in merged:
            pending.append(entry)
            size += len(entry)
            count += 1
            if size >= _WRITE_CHUNK:
                out.write(("\n" if count == len(pending) else ",\n") + ",\n".join(pending))
                pending, size = [], 0
        if pending:
            out.write(("\n" if count == len(pending) else ",\n") + ",\n".join(pending))
        out.write("\n}" if count else "}")
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
