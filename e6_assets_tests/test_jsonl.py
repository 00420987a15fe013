import contextlib
import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e6_assets.core.jsonl import SourceError, is_month_file, read_month_file
from e6_assets.core.staging import stage_source


def _write(tmp_path: Path, text: bytes, name: str = "2020-01_grouped.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text)
    return path


def test_reads_used_fields_and_ignores_others_of_any_type(tmp_path):
    path = _write(
        tmp_path,
        b'{"id": 1, "tags": "a b", "score": 5, "individual_parts": {"x": [1, {"y": null}]},'
        b' "regular_summary": null}\n'
        b'{"id": 2, "tags": "c", "score": "five", "individual_parts": [], "response_finish_reason": "STOP",'
        b' "regular_summary": "r", "brief_summary": "b"}\n',
    )
    assert read_month_file(path).to_pylist() == [
        {
            "id": 1,
            "tags": "a b",
            "regular_summary": None,
            "brief_summary": None,
            "response_finish_reason": None,
            "line": 1,
        },
        {
            "id": 2,
            "tags": "c",
            "regular_summary": "r",
            "brief_summary": "b",
            "response_finish_reason": "STOP",
            "line": 2,
        },
    ]


def test_last_line_without_newline_crlf_and_blank_lines_are_read(tmp_path):
    path = _write(tmp_path, b'{"id": 1, "tags": "x\\r\\n"}\r\n\r\n{"id": 3}')
    table = read_month_file(path)
    assert table.column("id").to_pylist() == [1, 3]
    assert table.column("line").to_pylist() == [1, 3]
    assert table.column("tags").to_pylist() == ["x\r\n", None]


def test_empty_file_gives_no_rows(tmp_path):
    assert read_month_file(_write(tmp_path, b"")).num_rows == 0


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"id": 2, "tags": "x"', "not valid JSON"),
        (b'{"tags": "x"}', 'no "id"'),
        (b'{"id": "2"}', '"id" is not an integer'),
        (b'{"id": 2.5}', '"id" is not an integer'),
        (b'{"id": true}', '"id" is not an integer'),
        (b'{"id": 2, "tags": ["a"]}', '"tags" is neither a string nor null'),
        (b'{"id": 2, "brief_summary": 3}', '"brief_summary" is neither a string nor null'),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_line_error_names_file_and_line(tmp_path, line, problem):
    path = _write(tmp_path, b'{"id": 1, "tags": "ok"}\n\n' + line + b'\n{"id": 4}\n')
    with pytest.raises(SourceError) as caught:
        read_month_file(path)
    assert str(caught.value).startswith("2020-01_grouped.jsonl:3: ")
    assert problem in str(caught.value)


def test_month_file_names():
    assert is_month_file("2024-12_grouped.jsonl")
    assert not is_month_file("2024-12_grouped.jsonl.tmp")
    assert not is_month_file("README.md")


# --- hostile input: each either refused naming file and line, or accepted and read right ----------


def _error(path: Path) -> str:
    with pytest.raises(SourceError) as caught:
        read_month_file(path)
    return str(caught.value)


def test_truncated_last_line_is_refused_naming_it(tmp_path):
    path = _write(tmp_path, b'{"id": 1, "tags": "a"}\n{"id": 2, "tags": "b"}\n{"id": 3, "tags": "unfini')
    assert _error(path).startswith("2020-01_grouped.jsonl:3: not valid JSON: Unterminated string")


def test_invalid_utf8_in_a_field_the_build_reads_is_refused_naming_the_line(tmp_path):
    path = _write(tmp_path, b'{"id": 1, "tags": "a"}\n{"id": 22, "regular_summary": "caf\xe9 au lait"}\n')
    assert _error(path) == '2020-01_grouped.jsonl:2: id 22: "regular_summary" is not valid UTF-8'


def test_invalid_utf8_in_a_field_the_build_does_not_read_is_accepted(tmp_path):
    path = _write(tmp_path, b'{"id": 1, "source": "\xff\xfe", "tags": "a"}\n')
    assert read_month_file(path).select(["id", "tags"]).to_pylist() == [{"id": 1, "tags": "a"}]


def test_utf8_bom_at_the_start_of_a_file_is_skipped(tmp_path):
    path = _write(tmp_path, b'\xef\xbb\xbf{"id": 1, "tags": "a"}\n{"id": 2, "tags": "b"}\n')
    table = read_month_file(path)
    assert table.select(["id", "tags", "line"]).to_pylist() == [
        {"id": 1, "tags": "a", "line": 1},
        {"id": 2, "tags": "b", "line": 2},
    ]


def test_utf8_bom_inside_a_file_is_refused(tmp_path):
    path = _write(tmp_path, b'{"id": 1}\n\xef\xbb\xbf{"id": 2}\n')
    assert _error(path).startswith("2020-01_grouped.jsonl:2: not valid JSON")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b'"123"', "\"id\" is not an integer: '123'"),
        (b"1.0", '"id" is not an integer: 1.0'),
        (b"1e3", '"id" is not an integer: 1000.0'),
        (b"9223372036854775808", '"id" is out of range (a 64-bit signed integer): 9223372036854775808'),
        (b"-9223372036854775809", '"id" is out of range (a 64-bit signed integer): -9223372036854775809'),
        (b"123456789012345678901234567890", '"id" is out of range (a 64-bit signed integer): 1234567890'),
        (b"null", 'no "id"'),
    ],
)
def test_ids_that_are_not_int64_integers_are_refused(tmp_path, value, problem):
    path = _write(tmp_path, b'{"id": 5}\n{"tags": "x", "id": ' + value + b"}\n")
    assert _error(path).startswith(f"2020-01_grouped.jsonl:2: {problem}")


def test_ids_at_the_int64_limits_are_read(tmp_path):
    path = _write(tmp_path, b'{"id": 9223372036854775807}\n{"id": -9223372036854775808}\n')
    assert read_month_file(path).column("id").to_pylist() == [2**63 - 1, -(2**63)]


def test_a_field_the_build_reads_given_twice_is_refused(tmp_path):
    path = _write(tmp_path, b'{"id": 1, "tags": "a", "tags": "b"}\n')
    assert _error(path) == '2020-01_grouped.jsonl:1: "tags" appears more than once'


def test_a_ten_megabyte_caption_is_read_whole(tmp_path):
    caption = ("A fox in the snow, " * 600_000)[:10_000_000]
    line = b'{"id": 7, "response_finish_reason": "STOP", "regular_summary": "' + caption.encode() + b'"}'
    path = _write(tmp_path, b'{"id": 6, "tags": "a"}\n' + line + b'\n{"id": 8, "tags": "b"}\n')
    table = read_month_file(path)
    assert table.column("id").to_pylist() == [6, 7, 8]
    assert table.column("regular_summary")[1].as_py() == caption


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b'[\n  {"id": 1},\n  {"id": 2}\n]\n', 1, "not valid JSON"),  # one pretty-printed JSON document
        (b"id,tags\n1,fox\n", 1, "not valid JSON"),  # CSV
        (gzip.compress(b'{"id": 1}\n', mtime=0), 1, "not valid JSON"),  # compressed
        (b'{"id": 1}\n"just a string"\n', 2, "expected a JSON object, got a string"),
    ],
)
def test_a_file_that_is_not_json_lines_is_refused_naming_the_line(tmp_path, content, line, problem):
    assert _error(_write(tmp_path, content)).startswith(f"2020-01_grouped.jsonl:{line}: {problem}")


def test_a_file_that_disappeared_after_listing_is_named(tmp_path):
    path = tmp_path / "2020-01_grouped.jsonl"
    assert _error(path) == f"{path}: the file disappeared after the source was listed"
    with pytest.raises(SourceError, match="disappeared after the source was listed"):
        stage_source([path], tmp_path / "staged")


@contextlib.contextmanager
def _without_root() -> Iterator[None]:
    """Run the block as an unprivileged user when the tests run as root (file modes bind root not)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_an_unreadable_file_is_named(tmp_path):
    path = _write(tmp_path, b'{"id": 1}\n')
    path.chmod(0)
    with _without_root():
        message = _error(path)
    assert message == f"{path}: cannot be read: Permission denied"
