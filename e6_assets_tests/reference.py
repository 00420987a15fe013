"""Straightforward implementations of the dataset card's rules, to check the vectorised build against."""

from __future__ import annotations

import json
from pathlib import Path

from e6_assets.core.jsonl import is_month_file


def card_caption(row: dict) -> str:
    """The card's rule, row by row, with null/absent parts dropped instead of crashing."""
    if row.get("response_finish_reason") == "STOP":
        parts = [row.get("regular_summary"), row.get("brief_summary")]
    else:
        parts = [row.get("tags")]
    must_exist = [part for part in parts if part]
    return " ".join(must_exist).replace("\n", "").replace("\r", "")


def latest_rows(folder: Path) -> dict[int, dict]:
    """Every row of the source, the later file (name order) and then the later line winning."""
    rows: dict[int, dict] = {}
    for path in sorted(p for p in folder.iterdir() if is_month_file(p.name)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def card_meta_cap(folder: Path) -> dict[str, dict[str, str]]:
    """What the card's script puts in meta_cap.json, with deterministic duplicate handling."""
    rows = latest_rows(folder)
    return {str(post_id): {"caption": card_caption(rows[post_id])} for post_id in sorted(rows)}
