"""The merge rule and the merged files, against a plain implementation of the rule (no Dagster)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from e6_assets.core.merge import MergeCounts, merge_shard, write_missing_json
from e6_assets.core.sample import sample_universe, write_sample_universe
from e6_assets.core.shards import SHARD_COUNT
from e6_assets.core.universe import UNIVERSE_SCHEMA
from e6_assets_tests.conftest import SAMPLE_ROWS
from e6_assets_tests.merge_support import (
    captions_by_id,
    copy_rearranged,
    merge_without_dagster,
    prepared_captions,
    read_json,
    reference_counts,
    reference_merge,
)


@pytest.fixture
def layout(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path):
    return copy_rearranged(prepared_captions(sample_dir, tmp_path_factory), tmp_path / "data")


def test_sample_universe_has_the_edge_cases_and_is_deterministic(sample_dir: Path, layout) -> None:
    universe = sample_universe(SAMPLE_ROWS)
    assert universe == sample_universe(SAMPLE_ROWS)
    captions = captions_by_id(layout)
    without_row = [k for k in universe if int(k) not in captions]
    assert 0.03 < len(without_row) / len(universe) < 0.05
    assert any(captions.get(int(k)) == "" for k in universe), "an id whose caption is empty"
    assert any(not e.get("tags") and int(k) not in captions for k, e in universe.items())
    assert any("tags" in e and e["tags"] is None for e in universe.values())
    assert any(e.get("tags") == "" for e in universe.values())
    assert any("train_resolution" not in e for e in universe.values())
    assert any("image_size" in e for e in universe.values())


def test_merged_files_equal_the_plain_rule_on_the_sample(tmp_path: Path, layout) -> None:
    universe_path = write_sample_universe(tmp_path / "meta_lat.json", SAMPLE_ROWS)
    universe = json.loads(universe_path.read_bytes())
    per_shard = merge_without_dagster(layout, universe_path)

    merged, missing = reference_merge(universe, captions_by_id(layout))
    assert layout.meta_lat_v2_json.read_bytes() == json.dumps(merged, indent=2).encode()
    assert layout.missing_json.read_bytes() == json.dumps(missing, indent=2).encode()
    assert len(per_shard) == SHARD_COUNT
    assert sum(per_shard, MergeCounts()) == reference_counts(universe, captions_by_id(layout))
    assert all(missing.values()), "every missing list has ids on the sample"


def _universe(rows: list[tuple[int, str | None, int | None, int | None]]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(UNIVERSE_SCHEMA.names, row, strict=True)) for row in rows], schema=UNIVERSE_SCHEMA
    )


def test_rule_on_each_edge_case() -> None:
    universe = _universe(
        [
            (1000, "a b", 512, 768),  # caption
            (2000, "a b", None, None),  # empty caption: falls back to tags; no latent
            (3000, None, 64, 64),  # no caption row and no tags: no caption key, no crash
            (4000, "", None, None),  # nothing at all
            (5000, 'ü "q"\n', 1, 2),  # escaping as json.dumps does
        ]
    )
    captions = pa.table({"id": [1000, 2000, 5000, 7000], "caption": ["cap", "", "ç", "x"]})
    fragment, counts = merge_shard(universe, captions)
    expected = {
        "1000": {"tags": "a b", "caption": "cap", "train_resolution": [512, 768]},
        "2000": {"tags": "a b", "caption": "a b"},
        "3000": {"train_resolution": [64, 64]},
        "4000": {},
        "5000": {"tags": 'ü "q"\n', "caption": "ç", "train_resolution": [1, 2]},
    }
    text = json.dumps(expected, indent=2)
    assert "{\n" + ",\n".join(fragment.column("entry").to_pylist()) + "\n}" == text
    assert counts == MergeCounts(ids=5, missing_tags=2, missing_caption=3, missing_latent=2)
    assert fragment.column("missing_caption").to_pylist() == [False, True, True, True, False]


def test_summary_line_has_the_cards_format() -> None:
    line = MergeCounts(ids=4441660, missing_tags=0, missing_caption=178162, missing_latent=0).summary_line()
    assert line == "ids: 4441660, missing tags: 0, missing caption: 178162, missing latent: 0"


def test_empty_universe_shard_gives_an_empty_fragment(tmp_path: Path) -> None:
    fragment, counts = merge_shard(_universe([]), pa.table({"id": [1], "caption": ["x"]}))
    assert fragment.num_rows == 0 and counts == MergeCounts()
    assert write_missing_json([], tmp_path / "missing.json") == {"tags": 0, "caption": 0, "latent": 0}
    assert read_json(tmp_path / "missing.json") == {"tags": [], "caption": [], "latent": []}
