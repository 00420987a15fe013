"""Reading the monthly ``YYYY-MM_grouped.jsonl`` caption files.

The fast path is pyarrow's multi-threaded JSON reader with an explicit schema for the five fields the
build uses; every other field is ignored, whatever its type. When that reader rejects a file, a slow
line-by-line pass finds the first bad line so that the error names the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
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


class SourceError(ValueError):
    """Bad input in a source file; the message names the file and line."""

    def __init__(self, file: str, line: int | None, problem: str):
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.problem = file, line, problem


def is_month_file(name: str) -> bool:
    return MONTH_FILE.match(name) is not None


def read_month_file(path: Path) -> pa.Table:
    """Return ``id, tags, regular_summary, brief_summary, response_finish_reason, line``.

    ``line`` is the 1-based line number of the row in the file (blank lines are skipped, and a
    last line without a newline is read like any other).
    """
    data = path.read_bytes()
    line_numbers = _non_blank_line_numbers(data)
    if not line_numbers:
        return SOURCE_SCHEMA.empty_table().append_column("line", pa.array([], pa.int32()))
    try:
        table = _parse(data, _BLOCK_BYTES)
    except pa.ArrowInvalid as error:
        if "straddling" not in str(error):
            raise _first_bad_line(path.name, data, str(error)) from None
        try:
            table = _parse(data, len(data) + 1)
        except pa.ArrowInvalid as error:
            raise _first_bad_line(path.name, data, str(error)) from None
    if table.num_rows != len(line_numbers):  # pragma: no cover - the two parsers disagree on a line
        raise _first_bad_line(path.name, data)
    table = table.append_column("line", pa.array(line_numbers, pa.int32()))
    if table.column("id").null_count:
        raise _first_bad_line(path.name, data)
    return table


def _parse(data: bytes, block_size: int) -> pa.Table:
    options = pa_json.ReadOptions(block_size=block_size)
    return pa_json.read_json(pa.BufferReader(data), read_options=options, parse_options=_PARSE_OPTIONS)


def _non_blank_line_numbers(data: bytes) -> list[int]:
    return [number for number, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def _first_bad_line(file: str, data: bytes, reader_error: str = "") -> SourceError:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        problem = row_problem(raw)
        if problem:
            return SourceError(file, number, problem)
    return SourceError(file, None, f"rejected by the JSON reader: {reader_error or 'row count mismatch'}")


def row_problem(raw: bytes) -> str | None:
    """What is wrong with one JSON line for this build, or ``None``."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return f"not valid JSON ({error})"
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    post_id = row.get("id")
    if post_id is None:
        return 'no "id"'
    if isinstance(post_id, bool) or not isinstance(post_id, int):
        return f'"id" is not an integer: {post_id!r}'
    if not -(2**63) <= post_id < 2**63:
        return f'"id" is out of range: {post_id}'
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return f'id {post_id}: "{name}" is neither a string nor null: {value!r}'
    return None
