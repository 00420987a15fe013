"""Fuzzing the monthly-file reader with mutated lines (seeded: the same examples on every run).

Whatever the bytes, ``read_month_file`` either returns rows that agree with Python's ``json`` on
every line, or raises ``SourceError`` naming the file and a line that is bad on its own, with every
line before it good: never an exception from pyarrow, never an error without a line.
"""

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e6_assets.core.jsonl import BOM, TEXT_FIELDS, SourceError, read_month_file

NAME = "2021-07_grouped.jsonl"

_text = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["STOP", "MAX_TOKENS", "a\nb", "é ✨"]))
_other = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_rows = st.fixed_dictionaries(
    {"id": st.integers(-(2**63), 2**63 - 1)},
    optional={**{name: _text for name in TEXT_FIELDS}, "score": _other, "individual_parts": _other},
)
_TOKENS = [
    b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b" ", b"\t", b"\r", b"\n", b"\x00", b"\x0c",
    b"\xff", b"\xc3", b"\xe2\x82", BOM, b"NaN", b"-Infinity", b"1.0", b"1e400", b"-", b"0",
    b"18446744073709551616", b"null", b"true", b'"123"', b'"id": 1, ', b'"tags": 5, ', b'"tags": "x", ',
    b"\\ud800", b"\\u00e9", b"\\n", b'{"id": 2}',
]  # fmt: skip
_ID_VALUES = [
    b"1.0", b"-0", b"1e2", b'"7"', b"true", b"null", b"[1]", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775809", b"123456789012345678901234567890", b"NaN", b"01", b"+1",
]  # fmt: skip
_IN_TEXT = [  # bad UTF-8 (a stray byte, a cut sequence, an encoded surrogate), bad escapes, a control byte
    b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\\ud800", b"\\udc00\\ud800", b"\x01", b"\\",
]  # fmt: skip
_mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(_TOKENS)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 10_000), st.integers(1, 12)),
    st.tuples(st.just("prefix"), st.just(0), st.sampled_from([BOM, b" ", b"\x0c", b"\r", b"[", b"\xff"])),
    st.tuples(st.just("id"), st.just(0), st.sampled_from(_ID_VALUES)),
    st.tuples(st.just("in_text"), st.integers(0, 5), st.sampled_from(_IN_TEXT)),
)
_ID_PATTERN = re.compile(rb'"id": -?[0-9]+')
_TEXT_VALUE = re.compile(rb'"(?:' + b"|".join(name.encode() for name in TEXT_FIELDS) + rb')": "')


def _mutate(line: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    for kind, position, arg in mutations:
        at = position % (len(line) + 1)
        if kind == "prefix":
            line = arg + line
        elif kind == "id":
            line = _ID_PATTERN.sub(b'"id": ' + arg, line, count=1)
        elif kind == "in_text":  # at the start of the value of a field the build reads
            starts = [match.end() for match in _TEXT_VALUE.finditer(line)]
            if starts:
                at = starts[position % len(starts)]
                line = line[:at] + arg + line[at:]
        elif kind == "insert":
            line = line[:at] + arg + line[at:]
        elif kind == "delete":
            line = line[:at] + line[at + arg :]
        elif kind == "truncate":
            line = line[:at]
        else:
            line = line[:at] + line[at : at + arg] + line[at:]
    return line


@st.composite
def month_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        row = draw(_rows)
        line = json.dumps(row, ensure_ascii=draw(st.booleans())).encode()
        if draw(st.integers(0, 2)) == 0:  # one line in three is mutated
            line = _mutate(line, draw(st.lists(_mutation, min_size=1, max_size=2)))
        lines.append(line)
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from([b"", b"  ", b"\r", b"\t"])))
    data = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    return (BOM if draw(st.integers(0, 9)) == 0 else b"") + data


def _read(folder: Path, data: bytes):
    path = folder / NAME
    path.write_bytes(data)
    return read_month_file(path)


def _python_row(line: bytes) -> dict | None:
    try:
        return json.loads(line.decode("utf-8", "surrogateescape"))
    except RecursionError:  # nested deeper than Python's json goes; the reader accepted it
        return None


def _assert_rows_agree_with_python(table, lines: list[bytes]) -> None:
    rows = [line for line in lines if line.strip(b" \t\r")]
    assert table.num_rows == len(rows)
    for got, line in zip(table.to_pylist(), rows, strict=True):
        expected = _python_row(line)
        if expected is not None:
            assert got["id"] == expected["id"]
            assert {name: got[name] for name in TEXT_FIELDS} == {n: expected.get(n) for n in TEXT_FIELDS}


@settings(
    derandomize=True,  # seeded: every run tries the same examples
    database=None,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=month_files())
def test_every_mutated_file_is_read_right_or_refused_naming_its_first_bad_line(tmp_path, data):
    lines = data.removeprefix(BOM).split(b"\n")
    try:
        table = _read(tmp_path, data)
    except SourceError as error:
        assert error.file == NAME
        assert error.line is not None and 1 <= error.line <= len(lines), str(error)
        assert str(error).startswith(f"{NAME}:{error.line}: ")
        before = lines[: error.line - 1]  # every line before it is good, and read right
        _assert_rows_agree_with_python(_read(tmp_path, b"\n".join(before)), before)
        with pytest.raises(SourceError) as alone:  # and the line is bad on its own (after a good line)
            _read(tmp_path, b'{"id": 0}\n' + lines[error.line - 1])
        assert alone.value.line == 2
        return
    _assert_rows_agree_with_python(table, lines)
