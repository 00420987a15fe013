"""Caption overrides: reading and validating the captioner's files, and the caption rule's extra layer."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from e6_assets.core.captions import CaptionCounts, apply_overrides, count_captions, rearrange
from e6_assets.core.layout import DataLayout
from e6_assets.core.overrides import (
    NO_OVERRIDES,
    OverrideError,
    changed_versions,
    read_overrides,
    stage_overrides,
    staged_overrides,
)
from e6_assets_tests.test_captions import EDGE_CASES, _table


def _write(folder: Path, name: str, lines: list[object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_later_file_then_later_line_wins_and_empty_captions_are_dropped(tmp_path):
    folder = tmp_path / "overrides"
    _write(
        folder,
        "a.jsonl",
        [
            {"id": 5, "caption": "first", "model": "m1"},
            {"id": 5, "caption": "second", "model": "m1"},
            {"id": 7, "caption": "kept\r\nwhole", "model": "m1"},
            {"id": 9, "caption": "nine", "model": "m1", "score": [1, 2]},  # other keys are ignored
        ],
    )
    _write(
        folder,
        "b.jsonl",
        [
            {"id": 5, "caption": "from the later file", "model": "m2"},
            {"id": 7, "caption": "\n", "model": "m2"},  # empty once newlines go: dropped, 7 keeps its own
            {"id": 9, "caption": None, "model": "m2"},
            "",
        ],
    )
    _write(folder, "notes.txt", ["not an override file"])
    table = read_overrides(folder)
    assert table.select(["id", "caption", "model", "file", "line"]).to_pylist() == [
        {"id": 5, "caption": "from the later file", "model": "m2", "file": "b.jsonl", "line": 1},
        {"id": 7, "caption": "keptwhole", "model": "m1", "file": "a.jsonl", "line": 3},
        {"id": 9, "caption": "nine", "model": "m1", "file": "a.jsonl", "line": 4},
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": 1, "caption": "x", "model": "m"', "not valid JSON"),
        ('{"id": 1.0, "caption": "x", "model": "m"}', '"id" is not an integer: 1.0'),
        ('{"id": "1", "caption": "x", "model": "m"}', "\"id\" is not an integer: '1'"),
        ('{"caption": "x", "model": "m"}', 'no "id"'),
        ('{"id": 1, "caption": 7, "model": "m"}', 'id 1: "caption" is neither a string nor null: 7'),
        ('{"id": 1, "caption": "x"}', 'id 1: "model" must be a non-empty string'),
        ('{"id": 1, "caption": "x", "model": ""}', 'id 1: "model" must be a non-empty string'),
        ('[1, "x", "m"]', "expected a JSON object"),
    ],
)
def test_a_bad_line_fails_naming_file_and_line_and_nothing_is_staged(tmp_path, line, problem):
    folder = tmp_path / "overrides"
    _write(folder, "a.jsonl", [{"id": 1001, "caption": "fine", "model": "m"}])
    _write(folder, "b.jsonl", [{"id": 2, "caption": "fine", "model": "m"}, "", line])
    layout = DataLayout(tmp_path / "data")
    with pytest.raises(OverrideError) as caught:
        stage_overrides(folder, layout)
    assert str(caught.value).startswith("b.jsonl:3: ")
    assert problem in str(caught.value)
    assert not layout.overrides_dir.exists()


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(OverrideError, match=r"caption overrides folder .*nowhere does not exist"):
        stage_overrides(tmp_path / "nowhere", DataLayout(tmp_path / "data"))


def test_staging_writes_only_the_shards_whose_overrides_changed_and_removes_emptied_ones(tmp_path):
    folder, layout = tmp_path / "overrides", DataLayout(tmp_path / "data")
    _write(folder, "a.jsonl", [{"id": i, "caption": f"c{i}", "model": "m"} for i in (1, 1001, 2, 3)])
    first = stage_overrides(folder, layout)
    assert sorted(first.versions) == ["0001", "0002", "0003"]
    assert first.shards_written == ["0001", "0002", "0003"] and first.overrides == 4
    assert staged_overrides(layout, "0001").to_pylist() == [
        {"id": 1, "caption": "c1", "model": "m"},
        {"id": 1001, "caption": "c1001", "model": "m"},
    ]
    assert staged_overrides(layout, "0004") is None

    _write(folder, "b.jsonl", [{"id": 2, "caption": "better", "model": "m2"}])
    (folder / "a.jsonl").write_text(
        json.dumps({"id": 1, "caption": "c1", "model": "m"})
        + "\n"
        + "\n".join(json.dumps({"id": i, "caption": f"c{i}", "model": "m"}) for i in (1001, 2))
    )
    second = stage_overrides(folder, layout)
    assert second.shards_written == ["0002"]
    assert second.shards_removed == ["0003"]
    assert second.versions["0001"] == first.versions["0001"]
    assert changed_versions(first.versions, second.versions) == {
        "0002": second.versions["0002"],
        "0003": NO_OVERRIDES,
    }

    cleared = stage_overrides(None, layout)  # E6_CAPTION_OVERRIDES unset: every staged shard goes
    assert cleared.versions == {} and cleared.shards_removed == ["0001", "0002"]
    assert list(layout.overrides_dir.glob("*.parquet")) == []


def test_a_shard_that_never_had_overrides_records_no_version():
    assert changed_versions({}, {}) == {}
    assert changed_versions({}, {"0007": "v1"}) == {"0007": "v1"}
    assert changed_versions({"0007": "v1"}, {"0007": "v1"}) == {}
    assert changed_versions({"0007": NO_OVERRIDES}, {}) == {}


def _overrides(rows: list[tuple[int, str, str]]) -> pa.Table:
    ids, captions, models = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "caption": pa.array(captions, pa.string()), "model": models}
    )


def test_an_override_replaces_the_caption_and_says_so_and_a_post_without_a_row_gains_one():
    rows = [{**row, "source_file": "f", "line": row["id"]} for row in EDGE_CASES]
    captions = rearrange(_table(rows))
    overrides = _overrides(
        [(4, "A wolf in the snow.", "vlm-a"), (5, "Was empty.", "vlm-b"), (12, "New.", "vlm-a")]
    )
    applied = apply_overrides(captions, overrides)
    by_id = {row["id"]: row for row in applied.to_pylist()}
    assert applied.column("id").to_pylist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]
    assert by_id[4] == {"id": 4, "caption": "A wolf in the snow.", "caption_source": "override"}
    assert by_id[5]["caption_source"] == "override"
    assert by_id[12] == {"id": 12, "caption": "New.", "caption_source": "override"}
    assert by_id[1] == captions.to_pylist()[0]  # no override: the card's caption
    counts = count_captions(applied, 0, overrides)
    assert counts == CaptionCounts(
        rows=10,
        from_summary=3,
        from_tags=2,
        empty=2,
        from_override=3,
        override_models={"vlm-a": 2, "vlm-b": 1},
    )
    assert (counts + counts).override_models == {"vlm-a": 4, "vlm-b": 2}


def test_counts_without_overrides_are_stored_as_before():
    counts = CaptionCounts(rows=9, from_summary=3, from_tags=3, empty=3, duplicates_dropped=2)
    assert counts.to_json_dict() == {
        "rows": 9,
        "from_summary": 3,
        "from_tags": 3,
        "empty": 3,
        "duplicates_dropped": 2,
    }
    assert CaptionCounts(**counts.to_json_dict()) == counts
    with_overrides = CaptionCounts(rows=2, from_override=2, override_models={"m": 2})
    assert CaptionCounts(**with_overrides.to_json_dict()) == with_overrides
