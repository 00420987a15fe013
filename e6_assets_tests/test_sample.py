import collections
import json
import zlib

from e6_assets.core.sample import EMPTY_MONTH, MISSING_MONTH, month_plans, write_sample
from e6_assets_tests.conftest import SAMPLE_ROWS
from e6_assets_tests.reference import latest_rows


def test_sample_is_deterministic_and_the_same_written_in_parallel(tmp_path):
    first = write_sample(tmp_path / "a", rows=500)
    second = write_sample(tmp_path / "b", rows=500)
    parallel = write_sample(tmp_path / "c", rows=500, jobs=2)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in parallel]


def test_sample_has_the_quirks_of_the_real_files(sample_dir):
    names = sorted(p.name for p in sample_dir.iterdir())
    assert f"{MISSING_MONTH}_grouped.jsonl" not in names
    assert (sample_dir / f"{EMPTY_MONTH}_grouped.jsonl").read_bytes() == b""
    assert not (sample_dir / names[-1]).read_bytes().endswith(b"\n")  # last file: no final newline
    assert (sample_dir / names[-2]).read_bytes().endswith(b"\n")

    raw = b"".join(p.read_bytes() for p in sorted(sample_dir.iterdir()))
    assert b"\\r\\n" in raw and b"\\n" in raw  # newlines inside captions
    assert "狐".encode() in raw  # non-ASCII text

    lines = [line for line in raw.split(b"\n") if line]
    rows = latest_rows(sample_dir)
    assert len(lines) > len(rows)  # some ids repeat
    ids_by_file = [
        [json.loads(line)["id"] for line in path.read_bytes().splitlines()]
        for path in sorted(sample_dir.iterdir())
    ]
    assert any(len(set(ids)) < len(ids) for ids in ids_by_file), "an id repeated within a month"
    seen: set[int] = set()
    across = False
    for ids in ids_by_file:
        across = across or bool(seen & set(ids))
        seen |= set(ids)
    assert across, "an id repeated in a later month"
    reasons = collections.Counter(row.get("response_finish_reason") for row in rows.values())
    not_stop = 1 - reasons["STOP"] / len(rows)
    assert 0.15 < not_stop < 0.25
    assert any(row.get("regular_summary") is None and "regular_summary" in row for row in rows.values())
    assert any(
        "regular_summary" not in row and row.get("response_finish_reason") == "STOP" for row in rows.values()
    )
    assert len({post_id % 1000 for post_id in rows}) > 900  # rows reach almost every shard


def test_sample_rows_have_the_size_and_shape_of_the_real_ones(sample_dir):
    files = sorted(sample_dir.iterdir())
    raw = b"".join(path.read_bytes() for path in files)
    lines = raw.split(b"\n")
    mean_row = (len(raw) + 1) / len(lines)  # JSON bytes per line, newline included
    assert 1500 < mean_row < 1800  # the real files: ~7 GB for ~4.3M rows
    # Prose from a vocabulary of thousands of words compresses like text, not like repeated sentences.
    assert 2.5 < len(raw) / len(zlib.compress(raw, 6)) < 4.5

    rows = [json.loads(line) for line in lines]
    summaries = [row["regular_summary"] for row in rows if row.get("regular_summary")]
    paragraphs = [len(summary.replace("\r\n", "\n").strip().split("\n\n")) for summary in summaries]
    assert min(paragraphs) == 1 and max(paragraphs) == 5  # a few on single newlines; most 2 to 5
    assert sum(count >= 2 for count in paragraphs) > 0.85 * len(paragraphs)
    tag_counts = [len(row["tag_string"].split()) for row in rows]
    assert min(tag_counts) == 15 and max(tag_counts) >= 55
    words = {word for summary in summaries for word in summary.split()}
    assert len(words) > 3000


def test_month_files_grow_quadratically_to_the_real_sizes_at_full_scale(sample_dir):
    files = sorted(sample_dir.iterdir())
    size_by_year = collections.Counter()
    for path in files:
        size_by_year[path.name[:4]] += path.stat().st_size
    assert 20 < size_by_year["2024"] / size_by_year["2008"] < 60  # monthly shares 2 ... 95
    assert [size_by_year[str(year)] for year in range(2010, 2025)] == sorted(
        size_by_year[str(year)] for year in range(2010, 2025)
    )

    raw_size = sum(size_by_year.values())
    mean_row = raw_size / sum(plan.rows for plan in month_plans(SAMPLE_ROWS))
    full = month_plans(4_300_000)
    assert sum(plan.rows for plan in full) == 4_300_000
    assert 1.5e6 < full[0].rows * mean_row < 2.5e6  # 2007-02: ~2 MB
    assert 85e6 < full[-1].rows * mean_row < 105e6  # 2024-12: ~95 MB
