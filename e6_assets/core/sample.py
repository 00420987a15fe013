"""A deterministic, synthetic stand-in for ``lodestones/e621-captions``, for offline builds and tests.

Rows have the shape of the real files and their quirks: unused fields of varying types (some
nested), null and absent summaries, ``\\n`` and ``\\r\\n`` inside captions, non-ASCII text, about a
fifth of rows not finished with ``STOP``, ids repeated across months and within a month, a missing
month, an empty month, and a last file without a final newline. Nothing in it is real e621 data.

It is also calibrated to the real files' size, so that a benchmark on it measures what the real
source costs: about 1.6 KB of JSON per row (a ``regular_summary`` of two to five paragraphs separated
by ``"\\n\\n"``, a one- or two-sentence ``brief_summary``, 15 to 60 tags in ``tags`` and
``tag_string``); words drawn with Zipf-like frequencies from a vocabulary of about 5,000, so that the
files compress about as text does (a month file 3.8x with zstd, its captions alone 2.5x) rather than
as repeated sentences do; month files growing quadratically from about 2 MB (2007-02) to about 95 MB
(2024-12) at the real row count (4.3M rows, about 7 GB); post ids ascending at the real density (ids
up to about 5.2M for 4.3M rows).

Every month is generated from its own seed, one month at a time, so memory stays bounded at any size
and months can be written in parallel with the same bytes.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from e6_assets.core.atomic import atomic_open, atomic_write_bytes
from e6_assets.core.parallel import map_in_processes, worker_count
from e6_assets.core.sources import ResolvedSource, month_files_in

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 621
MISSING_MONTH = "2009-06"
EMPTY_MONTH = "2007-03"
SYNTHETIC_LABEL = "SYNTHETIC sample (generated, not e621 data)"
# Part of the cache folder's name: a changed generator must not reuse files written by an older one.
GENERATOR_VERSION = 2

# Month sizes of the real files: about 2 MB in 2007 growing to about 95 MB in late 2024, roughly
# quadratically. A month's share of the rows is FIRST + GROWTH * (i / (n - 1)) ** 2.
_FIRST_MONTH_SHARE = 2.0
_MONTH_SHARE_GROWTH = 93.0

_FUNCTION_WORDS = (
    "the of and a with in is to her his on their its at as while an that from by are has this which "
    "one into over behind near two under against slightly very both around across through there it"
).split()
_THEME_WORDS = (
    "character fox wolf dragon cat canine feline scalie avian anthro feral fur scales wings tail ears "
    "eyes paws smile expression pose background forest night snow beach city blue red green golden "
    "white black orange purple soft bright dark light warm cool shadow sky trees grass water stone "
    "wooden window room bed lantern bridge friends meal waves clearing dusk dawn sunlight detailed "
    "image shows standing sitting looking viewer holding wearing shirt scarf jacket hat collar body "
    "head hand arm leg face mouth nose cheeks hair mane muzzle claws horns stripes spots pattern"
).split()
# Non-ASCII words and marks, placed among the common words so that every sample has some.
_NON_ASCII_WORDS = (
    "café naïve façade über déjà rêve señor jalapeño Zürich crème brûlée fiancée 狐 夕焼け 微笑 桜 "
    "猫 竜 ✨ ♥ — …"
).split()
_PROSE = [
    "The image shows a character with bright eyes standing in a quiet forest clearing at dusk.",
    "A small dragon curls around a lantern while snow falls softly over the old stone bridge.",
    "Un renard élégant lit un livre près de la fenêtre.",
    "夕焼けの中で狐が微笑んでいる。 ✨",
]
_TAG_WORDS = (
    "mammal canid canine canis fox wolf dragon felid feline domestic_cat scalie avian bird anthro "
    "feral solo duo group male female ambiguous_gender hi_res absurd_res digital_media_(artwork) "
    "traditional_media_(artwork) sketch watercolor detailed_background simple_background "
    "white_background outside inside forest night snow beach city looking_at_viewer smiling "
    "open_mouth standing sitting clothed clothing fur scales wings tail claws teeth tongue text "
    "english_text signature dialogue 2023 2024 cel_shading shaded multicolored_body"
).split()
_COLOURS = "red blue green golden white black orange purple pink grey brown yellow".split()
_PARTS = "fur eyes hair body tail scales wings ears nose clothing markings mane".split()
_OTHER_REASONS = ("MAX_TOKENS", "SAFETY", "RECITATION", None, "OTHER")


class _Words:
    """A word list drawn from with Zipf-like frequencies: rank ``r`` has weight ``1 / (r + 2.7) ** exponent``.

    The weights are laid out as a table of 65,536 slots, each word in as many slots as its weight
    earns (at least one), so that one draw is two random bytes and a list lookup: several times
    faster than ``random.choices`` with weights, which matters at millions of rows.
    """

    SLOTS = 1 << 16

    def __init__(self, words: list[str], exponent: float) -> None:
        weights = [1 / (rank + 2.7) ** exponent for rank in range(len(words))]
        scale = (self.SLOTS - len(words)) / sum(weights)
        counts = [1 + int(weight * scale) for weight in weights]
        counts[0] += self.SLOTS - sum(counts)
        self._slots = [word for word, count in zip(words, counts, strict=True) for _ in range(count)]
        self._lookup = self._slots.__getitem__

    def draw(self, rng: random.Random, count: int) -> list[str]:
        # Slots are numbered by pairs of bytes in the machine's order: the same on every little-endian one.
        return list(map(self._lookup, memoryview(rng.randbytes(2 * count)).cast("H")))


def _syllable_words(count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` distinct made-up words of one to three syllables, deterministic for ``rng``."""
    onsets = "b bl br c ch d dr f fl g gr h j k l m n p pr qu r s sh sl st t th tr v w y z".split()
    nuclei = "a e i o u ai ea ee ie oa oo ou y".split()
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "rk", "th", "x"]
    words: list[str] = []
    while len(words) < count:
        syllables = rng.choice((1, 1, 2, 2, 2, 3))
        word = "".join(rng.choice(onsets) + rng.choice(nuclei) + rng.choice(codas) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return sorted(words, key=len)  # the most frequent words are the shortest, as in real languages


@functools.cache
def _vocabularies() -> tuple[_Words, _Words]:
    """The prose vocabulary and the tag vocabulary: the same lists in every process and release."""
    rng = random.Random("e6_assets sample vocabulary")
    taken = set(_FUNCTION_WORDS + _THEME_WORDS + _NON_ASCII_WORDS + _TAG_WORDS)
    made_up = _syllable_words(7500, rng, taken)  # shortest first
    prose = _FUNCTION_WORDS + _THEME_WORDS + [word for index, word in enumerate(made_up) if index % 3 != 2]
    for index, word in enumerate(_NON_ASCII_WORDS):  # ranks ~150-1000: common enough to show up
        prose.insert(150 + 40 * index, word)
    tags = _TAG_WORDS + [f"{colour}_{part}" for colour in _COLOURS for part in _PARTS]
    for index, name in enumerate(made_up[2::3]):  # species, artists and characters
        tags.append(name if index % 3 else f"{name}_({('artist', 'character')[index % 2]})")
    return _Words(prose, exponent=1.0), _Words(tags, exponent=0.85)


def months() -> list[str]:
    """Every month the real dataset covers, 2007-02 through 2024-12, less the one the sample omits."""
    all_months = [f"{year}-{month:02d}" for year in range(2007, 2025) for month in range(1, 13)][1:]
    return [month for month in all_months if month != MISSING_MONTH]


@dataclass(frozen=True)
class MonthPlan:
    """One month of the sample: its rows are the sample's rows ``first_row`` to ``first_row + rows``."""

    month: str
    first_row: int
    rows: int


def month_plans(rows: int) -> list[MonthPlan]:
    """How ``rows`` split over the months: in proportion to the real files' sizes (see above)."""
    filled = [month for month in months() if month != EMPTY_MONTH]
    last = len(filled) - 1
    shares = [_FIRST_MONTH_SHARE + _MONTH_SHARE_GROWTH * (index / last) ** 2 for index in range(len(filled))]
    total = sum(shares)
    ends = [round(rows * share / total) for share in itertools.accumulate(shares)]
    ends[-1] = rows
    starts = [0, *ends[:-1]]
    return [MonthPlan(m, start, end - start) for m, start, end in zip(filled, starts, ends, strict=True)]


def _post_id(row_index: int) -> int:
    """The id of the post first seen at the sample's row ``row_index``: ascending, ~1.2 ids a row."""
    return row_index + row_index // 5 + 1


def _between(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint(low, high)`` at a quarter of its cost (it is called tens of times a row)."""
    return low + int(rng.random() * (high - low + 1))


def _paragraphs(
    rng: random.Random, prose: _Words, sentence_counts: list[int], shortest: int, longest: int
) -> list[str]:
    """Paragraphs of ``sentence_counts[i]`` sentences of ``shortest`` to ``longest`` words each.

    The words of all of them are drawn at once and the sentences marked in place (a capital, a full
    stop, a comma in some): per-sentence calls would cost more than the words.
    """
    spread = longest - shortest + 1
    randomness = rng.randbytes(2 * sum(sentence_counts))
    lengths = [shortest + byte % spread for byte in randomness[::2]]
    words = prose.draw(rng, sum(lengths))
    end = 0
    for length, comma in zip(lengths, randomness[1::2], strict=True):
        start, end = end, end + length
        words[start] = words[start].capitalize()
        words[end - 1] += "."
        if length > 8 and comma < 100:
            words[start + length // 2] += ","
    paragraphs = []
    end = sentence = 0
    for count in sentence_counts:
        start, end = end, end + sum(lengths[sentence : sentence + count])
        sentence += count
        paragraphs.append(" ".join(words[start:end]))
    return paragraphs


def _regular_summary(rng: random.Random, prose: _Words) -> str:
    """Two to five paragraphs of two to four sentences, mostly separated by a blank line."""
    counts = [2 + byte % 3 for byte in rng.randbytes(_between(rng, 2, 5))]
    paragraphs = _paragraphs(rng, prose, counts, 6, 15)
    if rng.random() < 0.05:
        paragraphs[-1] += " " + rng.choice(_PROSE)
    roll = rng.random()
    if roll < 0.04:
        return "\r\n\r\n".join(paragraphs) + "\n"  # Windows line ends, and a trailing newline
    if roll < 0.10:
        return "\n".join(paragraphs)
    return "\n\n".join(paragraphs)


def _brief_summary(rng: random.Random, prose: _Words) -> str:
    """One or two sentences, in rare cases on two lines."""
    sentences = _paragraphs(rng, prose, [1] * _between(rng, 1, 2), 7, 14)
    return ("\n" if rng.random() < 0.05 else " ").join(sentences)


def _tag_string(rng: random.Random, tags: _Words) -> str:
    """15 to 60 distinct tags (most posts nearer 15), sorted, space-separated, as e621 writes them."""
    count = 15 + int(45 * rng.random() ** 2)
    chosen = set(tags.draw(rng, count))
    while len(chosen) < count:
        chosen.update(tags.draw(rng, count - len(chosen)))
    return " ".join(sorted(chosen))


def _row(rng: random.Random, post_id: int, month: str) -> dict:
    prose, tag_words = _vocabularies()
    tags = _tag_string(rng, tag_words)
    md5 = rng.randbytes(16).hex()
    ext = rng.choice(("png", "jpg", "jpg", "webm"))
    day, hour, minute = _between(rng, 1, 28), _between(rng, 0, 23), _between(rng, 0, 59)
    row: dict = {
        "id": post_id,
        "md5": md5,
        ("file_url" if rng.random() < 0.5 else "url"): f"https://static.example/data/{md5[:2]}/{md5}.{ext}",
        "tag_string": tags,
        "rating": rng.choice("sqe"),
        "file_ext": ext,
        "file_size": _between(rng, 20_000, 30_000_000),
        "created_at": f"{month}-{day:02d}T{hour:02d}:{minute:02d}:00Z",
        "score": _between(rng, -5, 900) if rng.random() < 0.9 else str(_between(rng, 0, 9)),
        "fav_count": _between(rng, 0, 2000),
        "image_width": _between(rng, 256, 4096),
        "image_height": _between(rng, 256, 4096) if rng.random() < 0.5 else None,
        "source": rng.choice(("", "https://example.org/art", ["a", "b"], None)),
        "individual_parts": {
            "subject": rng.choice(_THEME_WORDS),
            "scores": [round(rng.random(), 3), round(rng.random(), 3)],
        },
    }
    if rng.random() < 0.99:
        row["tags"] = tags if rng.random() < 0.99 else rng.choice(("", None))
    if rng.random() < 0.8:
        row["response_finish_reason"] = "STOP"
        summaries = {
            "regular_summary": _regular_summary(rng, prose),
            "brief_summary": _brief_summary(rng, prose),
        }
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
            row["regular_summary"] = _regular_summary(rng, prose)
    if rng.random() < 0.1:
        row["midjourney_style_summary"] = rng.choice((_brief_summary(rng, prose), None, 3))
    return row


def month_rows(plan: MonthPlan, seed: int = DEFAULT_SEED) -> Iterator[dict]:
    """The rows of one month, from that month's own seed (independent of every other month).

    About 1% of rows repeat an earlier post (a correction): half of them one from an earlier month,
    half one from earlier in the same month.
    """
    rng = random.Random(f"{seed}:{plan.month}")
    for offset in range(plan.rows):
        roll = rng.random()
        if roll < 0.005 and offset:
            index = plan.first_row + rng.randrange(offset)
        elif roll < 0.01 and plan.first_row:
            index = rng.randrange(plan.first_row)
        else:
            index = plan.first_row + offset
        yield _row(rng, _post_id(index), plan.month)


def generate_rows(rows: int, seed: int = DEFAULT_SEED) -> Iterator[tuple[str, dict]]:
    """Yield ``(month, row)`` pairs, months ascending, ``rows`` in all (duplicates included)."""
    for plan in month_plans(rows):
        for row in month_rows(plan, seed):
            yield plan.month, row


def write_sample(
    folder: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, jobs: int = 1
) -> list[Path]:
    """Write the sample's monthly files into ``folder`` (each atomically) and return their paths.

    Each month is streamed to its file, so a process holds one row at a time; ``jobs`` processes
    write different months at once (the bytes do not depend on ``jobs``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    all_months = months()
    plans = {plan.month: plan for plan in month_plans(rows)}
    tasks = [(folder, plans.get(m, MonthPlan(m, 0, 0)), seed, m == all_months[-1]) for m in all_months]
    tasks.sort(key=lambda task: -task[1].rows)  # largest first, for an even finish
    for _ in map_in_processes(_write_month, tasks, jobs):
        pass
    return month_files_in(folder)


def _write_month(task: tuple[Path, MonthPlan, int, bool]) -> None:
    folder, plan, seed, last = task
    with atomic_open(folder / f"{plan.month}_grouped.jsonl") as handle:
        for offset, row in enumerate(month_rows(plan, seed)):
            if offset:
                handle.write(b"\n")
            handle.write(orjson.dumps(row))
        if plan.rows and not last:
            handle.write(b"\n")  # the last file lacks its final newline, as real files sometimes do


def resolve_sample(data_dir: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> ResolvedSource:
    """The sample source, generated once under ``data_dir/sample-source`` and reused after."""
    folder = data_dir / "sample-source" / f"rows-{rows}-seed-{seed}-v{GENERATOR_VERSION}"
    done = folder / ".complete"
    if done.exists():
        files = month_files_in(folder)
    else:
        files = write_sample(folder, rows, seed, worker_count())
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
            entry["tags"] = tags_of.get(post_id) or _tag_string(rng, _vocabularies()[1])
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
    path = data_dir / "sample-source" / f"meta_lat-rows-{rows}-seed-{seed}-v{GENERATOR_VERSION}.json"
    return path if path.exists() else write_sample_universe(path, rows, seed)
