"""The caption rule of the dataset card, made deterministic, as Arrow compute over a whole shard.

parts = [regular_summary, brief_summary] if response_finish_reason == "STOP" else [tags]
caption = " ".join(p for p in parts if p) with every "\\n" and "\\r" deleted

and one layer over it: a caption override (``e6_assets.core.overrides``: a captioner's output for the
posts whose caption is only tags) replaces the caption of its post, ``caption_source`` ``override``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SUMMARY, TAGS, EMPTY, OVERRIDE = "summary", "tags", "empty", "override"

REARRANGED_SCHEMA = pa.schema([("id", pa.int64()), ("caption", pa.string()), ("caption_source", pa.string())])


@dataclass(frozen=True)
class CaptionCounts:
    """What the ``caption_counts`` check reports for one shard (and, summed, for the whole)."""

    rows: int = 0
    from_summary: int = 0
    from_tags: int = 0
    empty: int = 0
    duplicates_dropped: int = 0
    from_override: int = 0
    override_models: Mapping[str, int] = field(default_factory=dict)  # overridden captions per model

    def __add__(self, other: CaptionCounts) -> CaptionCounts:
        models = dict(self.override_models)
        for model, count in other.override_models.items():
            models[model] = models.get(model, 0) + count
        numbers = {k: v + getattr(other, k) for k, v in self.as_dict().items()}
        return CaptionCounts(**numbers, override_models=dict(sorted(models.items())))

    def as_dict(self) -> dict[str, int]:
        """The numbers (the per-model counts are in ``override_models``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "override_models"}

    def to_json_dict(self) -> dict:
        """What a rearranged shard's footer stores. Without overrides it is what it was before
        overrides existed, so a build without them writes the same bytes."""
        stored: dict = self.as_dict()
        if not self.from_override:
            del stored["from_override"]
        else:
            stored["override_models"] = dict(self.override_models)
        return stored


def latest_row_per_id(raw: pa.Table) -> tuple[pa.Table, int]:
    """Keep one row per id: the one from the later file in name order, then the later line.

    Returns the rows ascending by id and how many duplicates were dropped.
    """
    ordered = raw.sort_by([("id", "ascending"), ("source_file", "ascending"), ("line", "ascending")])
    kept = last_row_of_each_id(ordered)
    return kept, ordered.num_rows - kept.num_rows


def last_row_of_each_id(ordered: pa.Table) -> pa.Table:
    """The last row of each run of equal ids in a table already ordered by id (then by precedence)."""
    ids = ordered.column("id").to_numpy()
    if len(ids) < 2:
        return ordered
    is_last_of_id = np.append(ids[1:] != ids[:-1], True)
    return ordered if is_last_of_id.all() else ordered.filter(pa.array(is_last_of_id))


def _join_non_empty(first: pa.ChunkedArray, second: pa.ChunkedArray) -> pa.ChunkedArray:
    """``" ".join(p for p in (first, second) if p)``, row by row.

    (``binary_join_element_wise(null_handling="skip")`` would do, but pyarrow 26 drops rows in
    which every part is null, so the selection is spelt out.)
    """
    first, second = pc.fill_null(first, ""), pc.fill_null(second, "")
    has_first, has_second = pc.not_equal(first, ""), pc.not_equal(second, "")
    both = pc.binary_join_element_wise(first, second, " ")
    return pc.if_else(pc.and_(has_first, has_second), both, pc.if_else(has_first, first, second))


def rearrange(rows: pa.Table) -> pa.Table:
    """Apply the caption rule to de-duplicated rows: ``id, caption, caption_source``."""
    if rows.num_rows == 0:
        return REARRANGED_SCHEMA.empty_table()
    is_stop = pc.fill_null(pc.equal(rows.column("response_finish_reason"), "STOP"), False)
    summary = _join_non_empty(rows.column("regular_summary"), rows.column("brief_summary"))
    caption = pc.if_else(is_stop, summary, rows.column("tags"))
    caption = pc.replace_substring_regex(pc.fill_null(caption, ""), r"[\r\n]", "")
    source = pc.if_else(
        pc.equal(caption, ""), pa.scalar(EMPTY), pc.if_else(is_stop, pa.scalar(SUMMARY), pa.scalar(TAGS))
    )
    return pa.Table.from_arrays([rows.column("id"), caption, source], schema=REARRANGED_SCHEMA)


def apply_overrides(captions: pa.Table, overrides: pa.Table) -> pa.Table:
    """Replace the caption of every post that has an override (``id, caption`` with non-empty
    captions, unique ascending ids), ``caption_source`` ``override``; a post without a source row
    gains one. Returns ``id, caption, caption_source``, ascending by id."""
    if overrides.num_rows == 0:
        return captions
    ids = captions.column("id")
    position = pc.index_in(ids, value_set=overrides.column("id"))
    has_override = pc.is_valid(position)
    caption = pc.if_else(has_override, overrides.column("caption").take(position), captions.column("caption"))
    source = pc.if_else(has_override, pa.scalar(OVERRIDE), captions.column("caption_source"))
    replaced = pa.Table.from_arrays([ids, caption, source], schema=REARRANGED_SCHEMA)
    new_posts = overrides.filter(pc.invert(pc.is_in(overrides.column("id"), value_set=ids)))
    if new_posts.num_rows == 0:
        return replaced
    added = pa.Table.from_arrays(
        [
            new_posts.column("id"),
            new_posts.column("caption"),
            pa.array([OVERRIDE] * new_posts.num_rows, pa.string()),
        ],
        schema=REARRANGED_SCHEMA,
    )
    return pa.concat_tables([replaced, added]).sort_by("id")


def count_captions(
    rearranged: pa.Table, duplicates_dropped: int, overrides: pa.Table | None = None
) -> CaptionCounts:
    """The shard's counts; ``overrides`` (with a ``model`` column), when given, are the overrides
    applied, for the per-model counts."""
    sources = pc.value_counts(rearranged.column("caption_source")).to_pylist()
    by_source = {item["values"]: item["counts"] for item in sources}
    models: dict[str, int] = {}
    if overrides is not None and overrides.num_rows:
        models = {
            item["values"]: item["counts"] for item in pc.value_counts(overrides.column("model")).to_pylist()
        }
    return CaptionCounts(
        rows=rearranged.num_rows,
        from_summary=by_source.get(SUMMARY, 0),
        from_tags=by_source.get(TAGS, 0),
        empty=by_source.get(EMPTY, 0),
        duplicates_dropped=duplicates_dropped,
        from_override=by_source.get(OVERRIDE, 0),
        override_models=dict(sorted(models.items())),
    )
