import collections

from e6_assets.sample import EMPTY_MONTH, MISSING_MONTH, write_sample
from e6_assets_tests.reference import latest_rows


def test_sample_is_deterministic(tmp_path):
    first = write_sample(tmp_path / "a", rows=500)
    second = write_sample(tmp_path / "b", rows=500)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


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
    reasons = collections.Counter(row.get("response_finish_reason") for row in rows.values())
    not_stop = 1 - reasons["STOP"] / len(rows)
    assert 0.15 < not_stop < 0.25
    assert any(row.get("regular_summary") is None and "regular_summary" in row for row in rows.values())
    assert any(
        "regular_summary" not in row and row.get("response_finish_reason") == "STOP" for row in rows.values()
    )
    assert len({post_id % 1000 for post_id in rows}) > 900  # rows reach almost every shard
