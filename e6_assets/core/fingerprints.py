"""Content fingerprints: a table's rows, a folder of source files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa

VERSION_FORMAT = "1"  # bump when the hashing changes: every shard gets a new version once


def table_version(table: pa.Table) -> str:
    """A stable hash of a table's column names and rows, in order (nulls and empty strings differ)."""
    digest = hashlib.sha256(f"{VERSION_FORMAT}:{','.join(table.column_names)}:{table.num_rows}".encode())
    if table.num_rows:
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:32]


def source_fingerprint(files: Iterable[Path], chunk: int = 1 << 20) -> str:
    """A fingerprint of a folder of source files: each file's name, size and content hash."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        content = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                content.update(block)
        digest.update(f"{path.name}\0{path.stat().st_size}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()
