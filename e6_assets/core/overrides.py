"""Caption overrides: a captioner's output, laid over the dataset card's captions.

``E6_CAPTION_OVERRIDES`` names a folder of JSONL files, one object per line,
``{"id": <post id>, "caption": "<text>", "model": "<captioner>"}``, written by any captioner (for
instance from the work lists of ``e6_assets.core.recaption``). The rules:

- files are read in name order, lines in order; when an id appears more than once, the later file
  wins, then the later line (as the monthly source does);
- ``caption`` is a string or null; ``\\n`` and ``\\r`` are deleted as in the caption rule, and a
  caption that is then empty is dropped (it overrides nothing, and does not undo an earlier one);
- ``model`` is a non-empty string: it is counted per shard, so every override says where it came from;
- ``id`` is an integer (as in the source: ``1.0`` or ``"1"`` are refused); other keys are ignored;
- a bad line fails with the file and line; nothing is staged then.

The folder is staged into one Parquet file per shard that has overrides, ``overrides/NNNN.parquet``
(``id, caption, model, file, line``, ascending id), with a content version in its footer. Only
shards whose overrides changed are rewritten; a shard whose overrides are all gone loses its file.
The caption step reads a shard's staged file when there is one: a shard without overrides costs one
``stat``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from e6_assets.core.atomic import atomic_path
from e6_assets.core.captions import last_row_of_each_id
from e6_assets.core.fingerprints import table_version
from e6_assets.core.jsonl import id_problem
from e6_assets.core.layout import DataLayout
from e6_assets.core.shards import SHARD_COUNT, SHARD_KEYS

OVERRIDE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("caption", pa.string()),
        ("model", pa.string()),
        ("file", pa.string()),
        ("line", pa.int32()),
    ]
)
NO_OVERRIDES = "none"  # the data version of a shard without overrides
_VERSION_KEY = b"e6_assets.overrides_version"


class OverrideError(ValueError):
    """A bad override file; the message names the file and line."""


def _describe(row: object) -> tuple[int, str | None, str] | str:
    """``(id, caption, model)`` of a parsed line, or what is wrong with it."""
    if not isinstance(row, dict):
        return "expected a JSON object"
    post_id = row.get("id")
    problem = id_problem(post_id)
    if problem:
        return problem
    caption, model = row.get("caption"), row.get("model")
    if caption is not None and not isinstance(caption, str):
        return f'id {post_id}: "caption" is neither a string nor null: {caption!r}'
    if not isinstance(model, str) or not model.strip():
        return f'id {post_id}: "model" must be a non-empty string (the captioner\'s name), got {model!r}'
    return post_id, caption, model


def read_override_file(path: Path) -> pa.Table:
    """One file's overrides with a non-empty caption, in line order (``OVERRIDE_SCHEMA``)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OverrideError(f"{path}: cannot be read: {error.strerror or error}") from None
    ids, captions, models, lines = [], [], [], []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise OverrideError(f"{path.name}:{number}: not valid UTF-8") from None
        except json.JSONDecodeError as error:
            raise OverrideError(
                f"{path.name}:{number}: not valid JSON: {error.msg} (column {error.colno})"
            ) from None
        described = _describe(row)
        if isinstance(described, str):
            raise OverrideError(f"{path.name}:{number}: {described}")
        post_id, caption, model = described
        caption = (caption or "").replace("\n", "").replace("\r", "")
        if caption:
            ids.append(post_id)
            captions.append(caption)
            models.append(model)
            lines.append(number)
    return pa.table([ids, captions, models, [path.name] * len(ids), lines], schema=OVERRIDE_SCHEMA)


def override_files(folder: Path) -> list[Path]:
    """The ``*.jsonl`` files of the folder, in name order (the later file wins)."""
    if not folder.is_dir():
        raise OverrideError(f"caption overrides folder {folder} does not exist")
    return sorted(path for path in folder.iterdir() if path.suffix == ".jsonl" and path.is_file())


def read_overrides(folder: Path) -> pa.Table:
    """Every override of the folder, one per id (the later file, then the later line, wins), ascending."""
    files = override_files(folder)
    tables = [read_override_file(path) for path in files]
    table = pa.concat_tables(tables) if tables else OVERRIDE_SCHEMA.empty_table()
    order = pa.array(np.repeat(np.arange(len(tables)), [t.num_rows for t in tables]), pa.int32())
    table = table.append_column("file_order", order)
    table = table.sort_by([("id", "ascending"), ("file_order", "ascending"), ("line", "ascending")])
    return last_row_of_each_id(table).drop_columns(["file_order"])


def _staged_version(path: Path) -> str | None:
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    version = metadata.get(_VERSION_KEY)
    return version.decode() if version else None


@dataclass(frozen=True)
class OverrideStaging:
    versions: dict[str, str]  # the data version of every shard that has overrides
    overrides: int  # overrides staged (one per post)
    files: int  # files read
    shards_written: list[str]  # shards whose staged file was (re)written
    shards_removed: list[str]  # shards whose overrides are all gone


def stage_overrides(folder: Path | None, layout: DataLayout) -> OverrideStaging:
    """Bring ``overrides/`` in line with the folder (``None``: no overrides, every staged file goes).

    The whole folder is read and validated before anything is written."""
    table = read_overrides(folder) if folder is not None else OVERRIDE_SCHEMA.empty_table()
    files = len(override_files(folder)) if folder is not None else 0
    shard = np.mod(table.column("id").to_numpy(), SHARD_COUNT)
    order = np.argsort(shard, kind="stable")
    table, shard = table.take(pa.array(order)), shard[order]
    bounds = np.searchsorted(shard, np.arange(SHARD_COUNT + 1))
    versions: dict[str, str] = {}
    written: list[str] = []
    for number in np.unique(shard).tolist():
        key = SHARD_KEYS[number]
        rows = table.slice(bounds[number], bounds[number + 1] - bounds[number])
        version = table_version(rows)
        versions[key] = version
        path = layout.override_shard(key)
        if _staged_version(path) != version:
            with atomic_path(path) as tmp:
                pq.write_table(
                    rows.replace_schema_metadata({_VERSION_KEY: version.encode()}), tmp, compression="zstd"
                )
            written.append(key)
    removed = []
    if layout.overrides_dir.is_dir():
        for path in sorted(layout.overrides_dir.glob("*.parquet")):
            if path.stem not in versions:
                path.unlink()
                removed.append(path.stem)
    return OverrideStaging(versions, table.num_rows, files, written, removed)


def staged_overrides(layout: DataLayout, key: str) -> pa.Table | None:
    """The shard's staged overrides (``id, caption, model``), or None when it has none."""
    path = layout.override_shard(key)
    if not path.exists():
        return None
    with pq.ParquetFile(path) as handle:
        return handle.read(columns=["id", "caption", "model"]).replace_schema_metadata(None)


def changed_versions(previous: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """The shards whose data version to record: new or changed overrides, and shards that had
    overrides and now have none (``NO_OVERRIDES``). A shard that never had any records nothing."""
    keys = set(previous) | set(current)
    changed = {key: current.get(key, NO_OVERRIDES) for key in keys}
    return {
        key: version for key, version in sorted(changed.items()) if previous.get(key, NO_OVERRIDES) != version
    }
