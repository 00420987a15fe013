from pathlib import Path

import pytest

from e6_assets.jsonl import SourceError, is_month_file, read_month_file


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
