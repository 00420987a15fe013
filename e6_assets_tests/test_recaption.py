"""The recaption queue and its work lists, on the sample: which posts are queued, with what, and how
the K lists split them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from e6_assets.core.layout import DataLayout
from e6_assets.core.recaption import MissingQueues, export_work_lists, write_queues
from e6_assets.core.sample import write_sample_universe
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.sources import resolve_local
from e6_assets.core.universe import stage_universe
from e6_assets_tests.conftest import SAMPLE_ROWS
from e6_assets_tests.reference import card_caption, latest_rows


def _reason(row: dict) -> str | None:
    """Why the card's rule queues a post: its caption is empty, or it came from the tags."""
    if not card_caption(row):
        return "empty"
    return None if row.get("response_finish_reason") == "STOP" else "tags"


def _queued(layout: DataLayout) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    for key in SHARD_KEYS:
        for row in pq.read_table(layout.recaption_queue(key)).to_pylist():
            assert row["id"] not in rows
            rows[row["id"]] = {**row, "shard": key}
    return rows


@pytest.fixture
def layout(full_build: DataLayout, tmp_path: Path) -> DataLayout:
    shutil.copytree(full_build.root, tmp_path / "data")
    return DataLayout(tmp_path / "data")


def test_the_queue_holds_the_tag_only_and_empty_captions_with_text_tags_and_image_location(
    layout: DataLayout, sample_dir: Path
):
    counts = dict(write_queues(layout, resolve_local(sample_dir).files, SHARD_KEYS, workers=2))
    source = latest_rows(sample_dir)
    expected = {post_id: _reason(row) for post_id, row in source.items() if _reason(row)}
    queued = _queued(layout)
    assert {post_id: row["reason"] for post_id, row in queued.items()} == expected
    assert sum(c.queued for c in counts.values()) == len(expected)
    assert sum(c.from_tags for c in counts.values()) == list(expected.values()).count("tags")
    for post_id, row in queued.items():
        original = source[post_id]
        assert row["caption"] == card_caption(original)
        assert row["tags"] == original.get("tags")
        assert row["md5"] == original["md5"] and row["file_ext"] == original["file_ext"]
        assert row["file_url"] == original.get("file_url", original.get("url"))
        assert row["shard"] == f"{post_id % 1000:04d}"
    shard = next(key for key, c in counts.items() if c.captions)
    assert counts[shard].tag_only_share == counts[shard].from_tags / counts[shard].captions


def test_with_an_id_universe_the_queue_is_its_posts_without_a_real_caption(
    layout: DataLayout, sample_dir, tmp_path
):
    universe_path = write_sample_universe(tmp_path / "meta_lat.json", rows=SAMPLE_ROWS)
    universe = json.loads(universe_path.read_bytes())
    staged = stage_universe(universe_path, layout.universe_stage_dir).staged
    list(write_queues(layout, resolve_local(sample_dir).files, SHARD_KEYS, staged))
    source = latest_rows(sample_dir)
    expected = {}
    for key, entry in universe.items():
        post_id = int(key)
        reason = "no_caption" if post_id not in source else _reason(source[post_id])
        if reason:
            tags = entry.get("tags") or None
            caption = card_caption(source[post_id]) if post_id in source else ""
            expected[post_id] = (reason, caption or tags or "")
    queued = _queued(layout)
    assert {post_id: (row["reason"], row["caption"]) for post_id, row in queued.items()} == expected
    assert "no_caption" in {reason for reason, _ in expected.values()}
    # missing.json's caption list (ids whose caption is empty or absent) is all in the queue.
    missing_caption = {post_id for post_id, (reason, _) in expected.items() if reason != "tags"}
    assert missing_caption <= set(queued)
    assert all(row["md5"] is None for row in queued.values() if row["reason"] == "no_caption")


@pytest.mark.parametrize("count", [1, 3, 8])
def test_the_work_lists_partition_the_queue_exactly(layout: DataLayout, sample_dir: Path, count: int):
    list(write_queues(layout, resolve_local(sample_dir).files, SHARD_KEYS))
    queued = _queued(layout)
    lists = export_work_lists(layout, count)
    assert [path.name for path in lists.paths] == [f"work-{i:02d}-of-{count:02d}.jsonl" for i in range(count)]
    seen: dict[int, int] = {}
    for index, path in enumerate(lists.paths):
        lines = path.read_text().splitlines()
        assert len(lines) == lists.counts[index]
        for line in lines:
            row = json.loads(line)
            assert row["id"] % count == index
            assert row["id"] not in seen
            seen[row["id"]] = index
            expected = {k: v for k, v in queued[row["id"]].items() if v is not None}
            assert row == expected
    assert set(seen) == set(queued)
    assert lists.total == len(queued)


def test_a_new_export_with_fewer_lists_removes_the_old_lists(layout: DataLayout, sample_dir: Path):
    list(write_queues(layout, resolve_local(sample_dir).files, SHARD_KEYS))
    export_work_lists(layout, 4)
    export_work_lists(layout, 2)
    assert sorted(p.name for p in layout.recaption_lists_dir.iterdir()) == [
        "work-00-of-02.jsonl",
        "work-01-of-02.jsonl",
    ]


def test_the_export_refuses_until_every_shard_has_a_queue(layout: DataLayout, sample_dir: Path):
    list(write_queues(layout, resolve_local(sample_dir).files, SHARD_KEYS[:10]))
    with pytest.raises(MissingQueues, match="990 shards have no recaption queue yet"):
        export_work_lists(layout, 2)
