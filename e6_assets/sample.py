"""A deterministic, synthetic stand-in for ``lodestones/e621-captions``, for offline builds and tests.

Rows have the shape of the real files and their quirks: unused fields of varying types (some
nested), null and absent summaries, ``\\n`` and ``\\r\\n`` inside captions, non-ASCII text, about a
fifth of rows not finished with ``STOP``, ids repeated across months and within a month, a missing
month, an empty month, and a last file without a final newline. Nothing in it is real e621 data.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import orjson

from e6_assets.atomic import atomic_write_bytes
from e6_assets.sources import ResolvedSource, month_files_in

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 621
MISSING_MONTH = "2009-06"
EMPTY_MONTH = "2007-03"
SYNTHETIC_LABEL = "SYNTHETIC sample (generated, not e621 data)"

_WORDS = (
    "fox wolf dragon cat canine feline scalie avian anthro feral solo duo smiling standing sitting "
    "forest night snow beach city blue red green golden fur scales wings tail looking_at_viewer "
    "outside inside digital_media_(artwork) sketch watercolor detailed_background simple_background "
).split()
_PROSE = [
    "The image shows a character with bright eyes standing in a quiet forest clearing at dusk",
    "A small dragon curls around a lantern while snow falls softly over the old stone bridge",
    "Two friends share a meal on a sunny beach, their tails swaying as waves roll in",
    "Un renard élégant lit un livre près de la fenêtre",
    "夕焼けの中で狐が微笑んでいる。 ✨ ",
]
_OTHER_REASONS = ("MAX_TOKENS", "SAFETY", "RECITATION", None, "OTHER")


def months() -> list[str]:
    """Every month the real dataset covers, 2007-02 through 2024-12, less the one the sample omits."""
    all_months = [f"{year}-{month:02d}" for year in range(2007, 2025) for month in range(1, 13)][1:]
    return [month for month in all_months if month != MISSING_MONTH]


def _caption(rng: random.Random) -> str:
    text = ". ".join(rng.choices(_PROSE, k=rng.randint(1, 4)))
    roll = rng.random()
    if roll < 0.08:
        text = text.replace(". ", ".\n", 1)
    elif roll < 0.12:
        text = text.replace(". ", ".\r\n", 1) + "\n"
    return text


def _row(rng: random.Random, post_id: int) -> dict:
    tags = " ".join(rng.choices(_WORDS, k=rng.randint(3, 25)))
    row: dict = {
        "id": post_id,
        "md5": f"{rng.getrandbits(128):032x}",
        ("file_url" if rng.random() < 0.5 else "url"): f"https://static.example/{post_id}.png",
        "tag_string": tags,
        "rating": rng.choice("sqe"),
        "file_ext": rng.choice(("png", "jpg", "webm")),
        "created_at": f"20{rng.randint(7, 24):02d}-01-01T00:00:00Z",
        "score": rng.randint(-5, 900) if rng.random() < 0.9 else str(rng.randint(0, 9)),
        "fav_count": rng.randint(0, 2000),
        "image_width": rng.randint(256, 4096),
        "image_height": rng.choice((rng.randint(256, 4096), None)),
        "source": rng.choice(("", "https://example.org/art", ["a", "b"], None)),
        "individual_parts": {"subject": rng.choice(_WORDS), "scores": [rng.random() for _ in range(2)]},
    }
    if rng.random() < 0.99:
        row["tags"] = tags if rng.random() < 0.99 else rng.choice(("", None))
    if rng.random() < 0.8:
        row["response_finish_reason"] = "STOP"
        summaries = {"regular_summary": _caption(rng), "brief_summary": _caption(rng)[:80]}
        for name in summaries:
            roll = rng.random()
            if roll < 0.03:
                summaries[name] = None
            elif roll < 0.05:
                summaries[name] = ""
            elif roll < 0.07:
                continue  # absent
            row[name] = summaries[name]
    else:
        reason = rng.choice(_OTHER_REASONS)
        if reason != "OTHER":
            row["response_finish_reason"] = reason
        if rng.random() < 0.5:
            row["regular_summary"] = _caption(rng)
    if rng.random() < 0.1:
        row["midjourney_style_summary"] = rng.choice((_caption(rng), None, 3))
    return row


def generate_rows(rows: int, seed: int = DEFAULT_SEED) -> Iterator[tuple[str, dict]]:
    """Yield ``(month, row)`` pairs, months ascending, ``rows`` in all (duplicates included)."""
    rng = random.Random(seed)
    month_list = [m for m in months() if m != EMPTY_MONTH]
    weights = [(1 + index) ** 1.5 for index in range(len(month_list))]
    scale = rows / sum(weights)
    counts = [int(weight * scale) for weight in weights]
    counts[-1] += rows - sum(counts)
    post_id = 0
    earlier_ids: list[int] = []
    for month, count in zip(month_list, counts, strict=True):
        for _ in range(count):
            roll = rng.random()
            if earlier_ids and roll < 0.01:
                repeated = rng.choice(earlier_ids)  # corrected in a later month (or later in this one)
            else:
                post_id += rng.randint(1, 3)
                repeated = post_id
                if roll < 0.05:
                    earlier_ids.append(post_id)
            yield month, _row(rng, repeated)


def write_sample(folder: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write the sample's monthly files into ``folder`` (each atomically) and return their paths.

    Months are generated in order, so only one month's lines are held in memory at a time.
    """
    folder.mkdir(parents=True, exist_ok=True)
    all_months = months()
    written = set()
    for month, pairs in itertools.groupby(generate_rows(rows, seed), key=lambda pair: pair[0]):
        _write_month(folder, month, [orjson.dumps(row) for _, row in pairs], last=month == all_months[-1])
        written.add(month)
    for month in set(all_months) - written:  # months without rows (the empty month) are still written
        _write_month(folder, month, [], last=month == all_months[-1])
    return month_files_in(folder)


def _write_month(folder: Path, month: str, lines: list[bytes], last: bool) -> None:
    data = b"\n".join(lines)
    if lines and not last:
        data += b"\n"  # the last file lacks its final newline, as real files sometimes do
    atomic_write_bytes(folder / f"{month}_grouped.jsonl", data)


def resolve_sample(data_dir: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> ResolvedSource:
    """The sample source, generated once under ``data_dir/sample-source`` and reused after."""
    folder = data_dir / "sample-source" / f"rows-{rows}-seed-{seed}"
    done = folder / ".complete"
    if done.exists():
        files = month_files_in(folder)
    else:
        files = write_sample(folder, rows, seed)
        done.touch()
    return ResolvedSource(
        files,
        f"{SYNTHETIC_LABEL}: {rows} rows, seed {seed}",
        synthetic=True,
        metadata={"synthetic": True, "sample_rows": rows, "sample_seed": seed},
    )


# --- the matching id universe (E6_ID_UNIVERSE=sample) --------------------------------------------


def sample_universe(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """A synthetic ``meta_lat.json`` for the sample's posts, ascending id, deterministic.

    About 98% of the sample's ids, plus unused ids (about 4% of the universe) that have no caption
    row; about 1.5% of entries without tags (absent, null or empty), about 1% without
    ``train_resolution``, some with an extra ``image_size`` the merge ignores. The first id without
    a caption row has neither tags nor a resolution (the case that crashed the original script).
    """
    rng = random.Random(f"{seed}:universe")
    tags_of: dict[int, str] = {}
    for _, row in generate_rows(rows, seed):
        tags_of[row["id"]] = row["tag_string"]
    captioned = sorted(tags_of)
    kept = [post_id for post_id in captioned if rng.random() < 0.98]
    unused = sorted(set(range(1, captioned[-1] + 2)) - set(tags_of)) if captioned else [1]
    extra = sorted(rng.sample(unused, min(len(unused), max(1, round(len(kept) * 0.04 / 0.96)))))
    universe: dict[str, dict] = {}
    for post_id in sorted([*kept, *extra]):
        entry: dict = {}
        roll = rng.random()
        if roll >= 0.015:
            entry["tags"] = tags_of.get(post_id) or " ".join(rng.choices(_WORDS, k=rng.randint(3, 25)))
        elif roll >= 0.01:
            entry["tags"] = rng.choice(("", None))
        if rng.random() >= 0.01:
            entry["train_resolution"] = [64 * rng.randint(8, 24), 64 * rng.randint(8, 24)]
        if rng.random() < 0.2:
            entry["image_size"] = [rng.randint(256, 4096), rng.randint(256, 4096)]
        universe[str(post_id)] = entry
    universe[str(extra[0])] = {}
    return universe


def write_sample_universe(path: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """Write the sample's universe as kohya does (``json.dumps(indent=2)``), atomically."""
    atomic_write_bytes(path, json.dumps(sample_universe(rows, seed), indent=2).encode())
    return path


def resolve_sample_universe(data_dir: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """The sample's universe under ``data_dir/sample-source``, generated once and reused after."""
    path = data_dir / "sample-source" / f"meta_lat-rows-{rows}-seed-{seed}.json"
    return path if path.exists() else write_sample_universe(path, rows, seed)
