"""Reading the monthly ``YYYY-MM_grouped.jsonl`` caption files.

The fast path is pyarrow's multi-threaded JSON reader with an explicit schema for the five fields the
build uses; every other field is ignored, whatever its type. That reader is also the judge of what a
valid line is: when it rejects a file, the file is bisected with the same reader to find the first
line it rejects, and that line alone is described (with Python's ``json``) so that the error names
the file, the line and what is wrong with it. The rules (README, "The rules"):

- each non-blank line is one JSON object with an integer ``"id"`` in the 64-bit signed range
  (``1.0``, ``"1"`` and ``true`` are not integers); blank lines are skipped;
- ``tags``, ``regular_summary``, ``brief_summary`` and ``response_finish_reason`` are each a
  string, null or absent, valid UTF-8, and appear at most once;
- other fields are not read: any type, any value the reader accepts;
- a UTF-8 byte order mark at the very start of a file is skipped.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

MONTH_FILE = re.compile(r"^\d{4}-\d{2}_grouped\.jsonl$")

TEXT_FIELDS = ("tags", "regular_summary", "brief_summary", "response_finish_reason")
SOURCE_SCHEMA = pa.schema(
    [("id", pa.int64())] + [(name, pa.string()) for name in TEXT_FIELDS],
)
_PARSE_OPTIONS = pa_json.ParseOptions(
    explicit_schema=SOURCE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False
)
# Blocks are parsed in parallel; a line longer than a block is retried with one block for the file.
_BLOCK_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r"  # what the reader skips as an empty line
_INT64 = (-(2**63), 2**63 - 1)


def id_problem(post_id: object) -> str | None:
    """What is wrong with a line's ``"id"`` value (absent, not an integer, beyond int64), if anything."""
    if post_id is None:
        return 'no "id"'
    if isinstance(post_id, bool) or not isinstance(post_id, int):
        return f'"id" is not an integer: {post_id!r}'
    if not _INT64[0] <= post_id <= _INT64[1]:
        return f'"id" is out of range (a 64-bit signed integer): {post_id}'
    return None


class SourceError(ValueError):
    """Bad input in a source file; the message names the file and line."""

    def __init__(self, file: str, line: int | None, problem: str):
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.problem = file, line, problem


def is_month_file(name: str) -> bool:
    return MONTH_FILE.match(name) is not None


def _unreadable(path: Path, error: OSError) -> SourceError:
    if isinstance(error, FileNotFoundError):
        return SourceError(str(path), None, "the file disappeared after the source was listed")
    return SourceError(str(path), None, f"cannot be read: {error.strerror or error}")


def source_stat(path: Path) -> os.stat_result:
    """``path.stat()``, with a ``SourceError`` naming the file when it is gone or unreadable."""
    try:
        return path.stat()
    except OSError as error:
        raise _unreadable(path, error) from None


def read_month_file(path: Path, with_offsets: bool = False) -> pa.Table:
    """Return ``id, tags, regular_summary, brief_summary, response_finish_reason, line``.

    ``line`` is the 1-based line number of the row in the file (blank lines are skipped, and a
    last line without a newline is read like any other). With ``with_offsets``, also ``offset``:
    where the line starts in the file, in bytes (to read a row's other fields again later). Raises
    ``SourceError`` naming the file and the first bad line.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _unreadable(path, error) from None
    skipped = 0
    if data.startswith(BOM):
        data, skipped = data[len(BOM) :], len(BOM)
    line_numbers = [number for number, line in enumerate(data.split(b"\n"), 1) if line.strip(_BLANK)]
    if not line_numbers:
        table = SOURCE_SCHEMA.empty_table().append_column("line", pa.array([], pa.int32()))
        return table.append_column("offset", pa.array([], pa.int64())) if with_offsets else table
    table, problem = _parse_checked(data, len(line_numbers), _BLOCK_BYTES)
    if table is None:
        raise _first_bad_line(path.name, data, problem)
    table = table.append_column("line", pa.array(line_numbers, pa.int32()))
    if with_offsets:
        newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
        line_starts = np.concatenate([[0], newlines + 1]) + skipped
        table = table.append_column("offset", pa.array(line_starts[np.array(line_numbers) - 1], pa.int64()))
    return table


def _parse_checked(data: bytes, lines: int, block_size: int) -> tuple[pa.Table | None, str]:
    """Parse ``data`` (holding ``lines`` non-blank lines); ``(table, "")`` or ``(None, problem)``."""
    if data.startswith(BOM):  # the reader skips one at the start of what it is given, and only there
        return None, "a byte order mark before the JSON value"
    options = pa_json.ReadOptions(block_size=max(block_size, 1))
    try:
        table = pa_json.read_json(pa.BufferReader(data), read_options=options, parse_options=_PARSE_OPTIONS)
    except pa.ArrowInvalid as error:
        if "straddling" in str(error) and block_size <= len(data):
            return _parse_checked(data, lines, len(data) + 1)
        return None, _reader_problem(error)
    if table.num_rows != lines:
        return None, f"{table.num_rows} JSON values on {lines} lines"
    if table.column("id").null_count:
        return None, 'no "id"'
    for name in TEXT_FIELDS:  # the reader does not check the UTF-8 of the strings it copies
        try:
            table.column(name).validate(full=True)
        except pa.ArrowInvalid:
            return None, f'"{name}" is not valid UTF-8'
    return table, ""


def _reader_problem(error: pa.ArrowInvalid) -> str:
    text = re.sub(r" in row \d+$", "", str(error).strip())
    return text.removeprefix("JSON parse error: ")


def _first_bad_line(file: str, data: bytes, problem: str) -> SourceError:
    """Bisect ``data`` with the reader itself to find the first line it rejects.

    Each line is accepted or rejected on its own, so the first bad line lies in the first half
    when that half is rejected, and in the second half otherwise: about two passes over the file.
    """
    spans, start = [], 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip(_BLANK):
            spans.append((number, start, start + len(line)))
        start += len(line) + 1
    lo, hi = 0, len(spans)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        _, left = _parse_checked(data[spans[lo][1] : spans[mid - 1][2]], mid - lo, len(data) + 1)
        if left:
            hi, problem = mid, left
        else:
            lo = mid
    number, begin, end = spans[lo]
    _, alone = _parse_checked(data[begin:end], 1, len(data) + 1)
    if not alone:  # pragma: no cover - a rejection that no single line explains
        return SourceError(file, None, f"rejected by the JSON reader: {problem}")
    return SourceError(file, number, describe_line(data[begin:end], alone))


class _Object(dict):
    """A JSON object that remembers which of its keys appeared more than once."""

    repeated: frozenset[str] = frozenset()


def _object(pairs: list[tuple[str, object]]) -> _Object:
    obj = _Object(pairs)
    obj.repeated = frozenset(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
    return obj


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def describe_line(raw: bytes, reader_problem: str) -> str:
    """What is wrong with one line the reader rejected, in the words of the rules above."""
    try:
        row = json.loads(raw.decode("utf-8", "surrogateescape"), object_pairs_hook=_object)
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg} (column {error.colno})"
    except RecursionError:
        return f"rejected by the JSON reader: {reader_problem}"
    if not isinstance(row, dict):
        return f"expected a JSON object, got {_JSON_TYPES.get(type(row), 'a number')}"
    repeated = [name for name in ("id", *TEXT_FIELDS) if name in row.repeated]
    if repeated:
        return f'"{repeated[0]}" appears more than once'
    post_id = row.get("id")
    problem = id_problem(post_id)
    if problem:
        return problem
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return f'id {post_id}: "{name}" is neither a string nor null: {value!r}'
        if value is not None and not _is_utf8(value):
            return f'id {post_id}: "{name}" is not valid UTF-8'
    return f"rejected by the JSON reader: {reader_problem}"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes and lone surrogate escapes
        return False
    return True
