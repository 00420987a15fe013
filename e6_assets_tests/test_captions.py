import pyarrow as pa

from e6_assets.core.captions import CaptionCounts, count_captions, latest_row_per_id, rearrange
from e6_assets_tests.reference import card_caption

COLUMNS = ["id", "tags", "regular_summary", "brief_summary", "response_finish_reason", "source_file", "line"]


def _table(rows: list[dict]) -> pa.Table:
    return pa.table(
        {
            name: pa.array(
                [row.get(name) for row in rows], pa.int64() if name in ("id", "line") else pa.string()
            )
            for name in COLUMNS
        }
    )


EDGE_CASES = [
    {"id": 1, "response_finish_reason": "STOP", "regular_summary": "A fox.", "brief_summary": "Fox."},
    {"id": 2, "response_finish_reason": "STOP", "regular_summary": None, "brief_summary": "Only brief."},
    {"id": 3, "response_finish_reason": "STOP", "regular_summary": "", "brief_summary": None, "tags": "t"},
    {"id": 4, "response_finish_reason": "MAX_TOKENS", "regular_summary": "ignored", "tags": "wolf\r\nsnow"},
    {"id": 5, "response_finish_reason": None, "tags": None},
    {"id": 6, "tags": "no reason at all"},
    {
        "id": 7,
        "response_finish_reason": "STOP",
        "regular_summary": "Line one.\nLine two.\r\n",
        "brief_summary": "é 日本",
    },
    {"id": 8, "response_finish_reason": "STOP", "regular_summary": "\n", "brief_summary": ""},
    {"id": 9, "response_finish_reason": "stop", "tags": "case matters"},
]


def test_caption_rule_matches_the_card_row_by_row():
    rows = [{**row, "source_file": "2020-01_grouped.jsonl", "line": row["id"]} for row in EDGE_CASES]
    result = rearrange(_table(rows)).to_pylist()
    assert [r["caption"] for r in result] == [card_caption(row) for row in EDGE_CASES]
    assert result[6]["caption"] == "Line one.Line two. é 日本"  # newlines deleted, not replaced


def test_caption_source_says_where_each_caption_came_from():
    rows = [{**row, "source_file": "f", "line": row["id"]} for row in EDGE_CASES]
    sources = [r["caption_source"] for r in rearrange(_table(rows)).to_pylist()]
    assert sources == ["summary", "summary", "empty", "tags", "empty", "tags", "summary", "empty", "tags"]


def test_later_file_then_later_line_wins_and_duplicates_are_counted():
    rows = [
        {"id": 5, "tags": "old", "source_file": "2020-01_grouped.jsonl", "line": 9},
        {"id": 5, "tags": "newest", "source_file": "2020-02_grouped.jsonl", "line": 1},
        {"id": 3, "tags": "first", "source_file": "2020-02_grouped.jsonl", "line": 2},
        {"id": 3, "tags": "second", "source_file": "2020-02_grouped.jsonl", "line": 7},
        {"id": 5, "tags": "middle", "source_file": "2020-01_grouped.jsonl", "line": 10},
        {"id": 1, "tags": "only", "source_file": "2020-01_grouped.jsonl", "line": 1},
    ]
    kept, dropped = latest_row_per_id(_table(rows))
    assert kept.column("id").to_pylist() == [1, 3, 5]
    assert kept.column("tags").to_pylist() == ["only", "second", "newest"]
    assert dropped == 3


def test_counts_add_up():
    rows = [{**row, "source_file": "f", "line": row["id"]} for row in EDGE_CASES]
    counts = count_captions(rearrange(_table(rows)), duplicates_dropped=2)
    assert counts == CaptionCounts(rows=9, from_summary=3, from_tags=3, empty=3, duplicates_dropped=2)
    assert counts + counts == CaptionCounts(18, 6, 6, 6, 4)


def test_empty_shard_rearranges_to_no_rows():
    assert rearrange(_table([])).num_rows == 0
    assert latest_row_per_id(_table([]))[1] == 0
