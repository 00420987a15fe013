"""The id universe: the trainer's metadata file for the posts that have images and latents.

The file is kohya sd-scripts' ``meta_lat.json``: one JSON object ``{"<id>": {"tags": "...",
"train_resolution": [w, h], ...}}``; at full scale 4.4M entries and over 1 GB. It is stream-parsed
(ijson's C backend, a few seconds per GB, memory independent of the file's size) exactly once per
file version and staged into a columnar copy: 20 Parquet files of 50 shards each, in a folder named
by the file's sha256. A run over any range of shards then reads only the buckets of that range, and
a rebuild of one shard never parses the JSON again. A file with a bad entry is rejected before
anything is staged, with an error naming the file and the id.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import ijson
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from e6_assets.core.atomic import atomic_write_bytes, temp_suffix
from e6_assets.core.captions import last_row_of_each_id
from e6_assets.core.shards import SHARD_COUNT
from e6_assets.core.sources import SourceNotFound, parse_hf_url

STAGE_FORMAT = "1"  # bump when the staged layout changes: every universe is staged again
BUCKET_SHARDS = 50  # shards per staged bucket file: a bucket is 1/20 of the universe
_BATCH = 1 << 16  # entries parsed before they are split into the buckets
_MANIFEST = "manifest.json"

STAGED_SCHEMA = pa.schema(
    [
        ("shard", pa.int16()),
        ("id", pa.int64()),
        ("seq", pa.int64()),  # position in the file: on a repeated key the later entry wins, as in json.load
        ("tags", pa.string()),  # null when absent or null in the file
        ("width", pa.int32()),  # train_resolution; both null when absent
        ("height", pa.int32()),
    ]
)
UNIVERSE_SCHEMA = pa.schema([field for field in STAGED_SCHEMA if field.name not in ("shard", "seq")])


class UniverseError(ValueError):
    """The universe file is not what the merge needs; the message names the file and the id."""


@dataclass(frozen=True)
class ResolvedUniverse:
    """A local copy of the universe file and what it is (path, Hub commit, or synthetic sample)."""

    path: Path
    description: str
    synthetic: bool = False
    metadata: dict[str, str | int | bool] = field(default_factory=dict)


def resolve_universe(spec: str, data_dir: Path, hub_cache_dir: str | None = None) -> ResolvedUniverse:
    """``sample[:ROWS]``, ``hf://datasets/OWNER/REPO/PATH[@REV]`` or a local path -> a local file."""
    spec = spec.strip()
    if spec == "sample" or spec.startswith("sample:"):
        from e6_assets.core.sample import DEFAULT_ROWS, DEFAULT_SEED, SYNTHETIC_LABEL, resolve_sample_universe

        rows = int(spec.partition(":")[2] or DEFAULT_ROWS)
        path = resolve_sample_universe(data_dir, rows)
        return ResolvedUniverse(
            path,
            f"{SYNTHETIC_LABEL}: id universe matching sample:{rows}, seed {DEFAULT_SEED}",
            synthetic=True,
            metadata={"synthetic": True, "sample_rows": rows, "sample_seed": DEFAULT_SEED},
        )
    if spec.startswith("hf://"):
        return _resolve_hub(spec, hub_cache_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise SourceNotFound(f"id universe {path} does not exist or is not a file")
    return ResolvedUniverse(path, f"local file {path}", metadata={"universe_path": str(path)})


def _resolve_hub(url: str, cache_dir: str | None) -> ResolvedUniverse:
    """Download (or find in the Hub cache) one file; honours HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE."""
    from huggingface_hub import hf_hub_download

    location = parse_hf_url(url)
    if not location.path:
        raise SourceNotFound(f"{url!r} names no file: expected hf://datasets/OWNER/REPO/PATH[@REV]")
    local = Path(
        hf_hub_download(
            location.repo_id,
            location.path,
            repo_type="dataset",
            revision=location.revision,
            cache_dir=cache_dir,
        )
    )
    # A cached file sits at .../snapshots/<commit>/<path>: the folder above the path is the commit.
    commit = local.parents[len(Path(location.path).parts) - 1].name
    return ResolvedUniverse(
        local,
        f"hf://datasets/{location.repo_id}/{location.path}@{commit}",
        metadata={
            "hub_repo": location.repo_id,
            "hub_path": location.path,
            "hub_revision": location.revision,
            "hub_commit": commit,
        },
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# --- parsing -------------------------------------------------------------------------------------


class _Prefixed:
    """A read-only stream with some bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read()
        head, self._head = self._head[:size], self._head[size:]
        return head


@contextlib.contextmanager
def _open_json(path: Path) -> Iterator[IO[bytes]]:
    """The JSON bytes of ``path``: the file itself, or the one file inside a ``.tar.gz``."""
    if not path.name.endswith((".tar.gz", ".tgz")):
        with open(path, "rb") as handle:
            yield handle
        return
    with tarfile.open(path, "r|gz") as archive:
        member = next((m for m in archive if m.isfile()), None)
        if member is None:
            raise UniverseError(f"{path}: the archive holds no file")
        handle = archive.extractfile(member)
        assert handle is not None
        yield handle
        while (later := archive.next()) is not None:  # iter(archive) would list the first again
            if later.isfile():
                raise UniverseError(f"{path}: the archive holds more than one file; expected one JSON file")


def _check_object(path: Path, handle: IO[bytes]) -> IO[bytes]:
    """Fail unless the first JSON value is an object (ijson would silently find no members)."""
    head = b""
    while True:
        chunk = handle.read(1 << 16)
        head += chunk
        stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
        if stripped or not chunk:
            break
    if not stripped:
        raise UniverseError(f'{path}: empty file; expected a JSON object {{"<id>": {{...}}}}')
    if stripped[:1] != b"{":
        line = head[: len(head) - len(stripped)].count(b"\n") + 1
        raise UniverseError(
            f"{path}: line {line}: not a JSON object "
            f'(starts with {stripped[:20]!r}); expected {{"<id>": {{...}}}}'
        )
    return _Prefixed(head, handle)


def _resolution(path: Path, key: str, value: object) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if isinstance(value, list) and len(value) == 2 and all(type(side) is int and side > 0 for side in value):
        return value[0], value[1]
    raise UniverseError(
        f"{path}: id {key}: train_resolution must be two positive integers [width, height], got "
        f"{json.dumps(value)[:80]}"
    )


def iter_entries(path: Path) -> Iterator[tuple[int, str | None, int | None, int | None]]:
    """Yield ``(id, tags, width, height)`` per member of the universe object, in file order.

    ``tags`` null and ``train_resolution`` null count as absent. Everything else that is not what
    the trainer reads (a key that is not a post id, an entry that is not an object, tags that are
    not a string, a resolution that is not two positive integers, broken JSON) is a
    ``UniverseError`` naming the file and the id.
    """
    last = None
    try:
        with _open_json(path) as raw:
            handle = _check_object(path, raw)
            for key, entry in ijson.kvitems(handle, "", use_float=True, buf_size=1 << 20):
                if not (key.isascii() and key.isdigit() and str(int(key)) == key):
                    raise UniverseError(f"{path}: key {key!r} is not a post id (a decimal integer)")
                if not isinstance(entry, dict):
                    raise UniverseError(
                        f"{path}: id {key}: entry is not a JSON object, got {json.dumps(entry)[:80]}"
                    )
                tags = entry.get("tags")
                if tags is not None and not isinstance(tags, str):
                    raise UniverseError(
                        f"{path}: id {key}: tags must be a string, got {json.dumps(tags)[:80]}"
                    )
                width, height = _resolution(path, key, entry.get("train_resolution"))
                last = key
                yield int(key), tags, width, height
    except ijson.JSONError as error:
        where = f"after id {last}" if last is not None else "before the first entry"
        raise UniverseError(f"{path}: not valid JSON ({where}): {error}") from error
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UniverseError(f"{path}: cannot read: {error}") from error


# --- staging -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagingResult:
    staged: StagedUniverse
    parsed: bool  # False when a staged copy of this file version already existed


def _bucket_name(bucket: int) -> str:
    return f"bucket-{bucket:02d}.parquet"


def _batch_table(ids: list, tags: list, widths: list, heights: list, first_seq: int) -> pa.Table:
    id_array = np.asarray(ids, dtype=np.int64)
    return pa.table(
        {
            "shard": pa.array(np.mod(id_array, SHARD_COUNT).astype(np.int16)),
            "id": pa.array(id_array),
            "seq": pa.array(np.arange(first_seq, first_seq + len(ids), dtype=np.int64)),
            "tags": pa.array(tags, pa.string()),
            "width": pa.array(widths, pa.int32()),
            "height": pa.array(heights, pa.int32()),
        },
        schema=STAGED_SCHEMA,
    )


def _parse_into(path: Path, folder: Path) -> int:
    buckets = SHARD_COUNT // BUCKET_SHARDS
    writers = [
        pq.ParquetWriter(folder / _bucket_name(b), STAGED_SCHEMA, compression="zstd") for b in range(buckets)
    ]
    count = 0
    try:
        columns: tuple[list, list, list, list] = ([], [], [], [])

        def flush() -> None:
            nonlocal count, columns
            if not columns[0]:
                return
            table = _batch_table(*columns, first_seq=count)
            count += table.num_rows
            columns = ([], [], [], [])
            table = table.sort_by([("shard", "ascending")])
            bucket_of = table.column("shard").to_numpy() // BUCKET_SHARDS
            bounds = np.searchsorted(bucket_of, np.arange(buckets + 1), side="left")
            for bucket, (lo, hi) in enumerate(itertools.pairwise(bounds)):
                if hi > lo:
                    writers[bucket].write_table(table.slice(lo, hi - lo))

        for post_id, tags, width, height in iter_entries(path):
            columns[0].append(post_id)
            columns[1].append(tags)
            columns[2].append(width)
            columns[3].append(height)
            if len(columns[0]) >= _BATCH:
                flush()
        flush()
    finally:
        for writer in writers:
            writer.close()
    return count


def stage_universe(path: Path, stage_root: Path, sha256: str | None = None) -> StagingResult:
    """Bring the staged copy of the universe file ``path`` up to date (keyed on its sha256).

    The copy is built in a temporary folder and renamed into place when complete, so a failed or
    interrupted parse leaves nothing behind; copies of other file versions are removed after.
    """
    sha256 = sha256 or file_sha256(path)
    target = stage_root / f"{STAGE_FORMAT}-{sha256}"
    if (target / _MANIFEST).exists():
        return StagingResult(StagedUniverse(target), parsed=False)
    stage_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", suffix=temp_suffix(), dir=stage_root))
    try:
        entries = _parse_into(path, tmp)
        manifest = {"format": STAGE_FORMAT, "sha256": sha256, "entries": entries, "file": path.name}
        atomic_write_bytes(tmp / _MANIFEST, json.dumps(manifest, indent=2).encode())
        os.chmod(tmp, 0o755)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in stage_root.iterdir():
        if old.is_dir() and old != target and not old.name.startswith(".staging-"):
            shutil.rmtree(old, ignore_errors=True)
    return StagingResult(StagedUniverse(target), parsed=True)


class StagedUniverse:
    """Reads ranges of shards from a staged universe: one row per id, ascending, later entry wins."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = json.loads((folder / _MANIFEST).read_bytes())

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    @property
    def entries(self) -> int:
        return self.manifest["entries"]

    def iter_shard_tables(self, shards: Sequence[int]) -> Iterator[tuple[int, pa.Table]]:
        """Yield ``(shard, rows)`` (``UNIVERSE_SCHEMA``, ascending id) for each of ``shards``, ascending.

        One bucket (1/20 of the universe) is in memory at a time.
        """
        wanted = sorted(set(shards))
        for bucket in sorted({shard // BUCKET_SHARDS for shard in wanted}):
            table = pq.read_table(self.folder / _bucket_name(bucket))
            table = table.sort_by([("shard", "ascending"), ("id", "ascending"), ("seq", "ascending")])
            table = last_row_of_each_id(table)  # ordered by id within each shard
            shard_column = table.column("shard").to_numpy()
            for shard in (s for s in wanted if s // BUCKET_SHARDS == bucket):
                lo, hi = np.searchsorted(shard_column, [shard, shard + 1], side="left")
                yield shard, table.slice(lo, hi - lo).select(UNIVERSE_SCHEMA.names)
