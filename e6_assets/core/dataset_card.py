"""The dataset card (``README.md``) published with the dataset, generated from the build.

The card holds only what the build determines (counts, source commit, layout), never a date or a
local path: publishing the same build twice gives the same bytes, so an unchanged build makes no
commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from e6_assets.core.captions import CaptionCounts
from e6_assets.core.layout import DataLayout
from e6_assets.core.merge import MergeCounts, read_merge_footer
from e6_assets.core.pipeline import read_counts
from e6_assets.core.shards import SHARD_COUNT, SHARD_KEYS

TITLE = "e621 2024 captions, 1k tar"
LICENSE = "cc-by-nc-sa-4.0"  # the licence of lodestones/e621-captions; ShareAlike keeps it
_SOURCE_URL = "https://huggingface.co/datasets/{repo}"


@dataclass(frozen=True)
class SourceRecord:
    """Where some shards were built from, as their build recorded it (never a local path)."""

    description: str
    shards: int = 1
    synthetic: bool = False
    hub_repo: str | None = None
    hub_commit: str | None = None


def source_of(metadata: Mapping[str, object]) -> SourceRecord:
    """The source of one shard from the metadata of its ``raw_captions`` materialization."""
    if metadata.get("hub_commit"):
        repo, commit = str(metadata.get("hub_repo")), str(metadata["hub_commit"])
        return SourceRecord(f"hf://datasets/{repo}@{commit}", hub_repo=repo, hub_commit=commit)
    if metadata.get("synthetic"):
        return SourceRecord(str(metadata.get("source", "a synthetic sample")), synthetic=True)
    folder = metadata.get("source_folder")
    name = f" ({PurePath(str(folder)).name})" if folder else ""
    return SourceRecord(f"a local folder of monthly files{name}")


@dataclass(frozen=True)
class Provenance:
    """The sources the shards were built from, with how many shards each; ``unrecorded`` shards
    have no recorded build (built outside Dagster, or never)."""

    sources: tuple[SourceRecord, ...] = ()
    unrecorded: int = SHARD_COUNT

    @classmethod
    def of_shards(cls, records: Iterable[SourceRecord]) -> Provenance:
        counts = Counter(records)
        sources = tuple(
            SourceRecord(r.description, n, r.synthetic, r.hub_repo, r.hub_commit)
            for r, n in sorted(counts.items(), key=lambda item: (-item[1], item[0].description))
        )
        return cls(sources, SHARD_COUNT - sum(counts.values()))

    @property
    def synthetic(self) -> bool:
        return any(source.synthetic for source in self.sources)

    def lines(self) -> list[str]:
        """One line per source, for logs and the card."""
        if not self.sources:
            return ["not recorded: no shard was built through Dagster on this instance"]
        lines = [
            source.description + (f" ({source.shards} shards)" if len(self.sources) > 1 else "")
            for source in self.sources
        ]
        if self.unrecorded:
            lines.append(f"{self.unrecorded} shards without a recorded build")
        return lines


@dataclass(frozen=True)
class CardFacts:
    repo_id: str
    prefix: str  # the folder of the tars and indexes in the repo, "" or ending in "/"
    captions: CaptionCounts
    merge: MergeCounts | None  # None: not merged with an id universe
    provenance: Provenance
    tar_members: int
    tar_bytes: int


def card_facts(
    layout: DataLayout, repo_id: str, prefix: str, provenance: Provenance, merged: bool
) -> CardFacts:
    """The figures of the card, from what the build stored beside its outputs (Parquet footers and
    tar indexes are read; no caption is)."""
    captions = sum((read_counts(layout, key) for key in SHARD_KEYS), CaptionCounts())
    merge = None
    if merged:
        merge = sum(
            (read_merge_footer(layout.meta_lat_fragment(key))[0] for key in SHARD_KEYS), MergeCounts()
        )
    tar_bytes = sum(layout.tar(key).stat().st_size for key in SHARD_KEYS)
    return CardFacts(repo_id, prefix, captions, merge, provenance, captions.rows - captions.empty, tar_bytes)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "n>1T")


def _front_matter(facts: CardFacts) -> str:
    # `configs` points the Hub's viewer (and `datasets.load_dataset`) at the tars, read as WebDataset:
    # without it, the 1000 JSON tar indexes beside them would be taken for the dataset.
    return "\n".join(
        [
            "---",
            f"license: {LICENSE}",
            f"pretty_name: {TITLE}",
            "language:",
            "- en",
            "task_categories:",
            "- text-to-image",
            "tags:",
            "- e621",
            "- captions",
            "- webdataset",
            "- not-for-all-audiences",
            *(["- synthetic"] if facts.provenance.synthetic else []),
            "size_categories:",
            f"- {size_category(facts.captions.rows)}",
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            f'    path: "{facts.prefix}*.tar"',
            "---",
        ]
    )


def _source_section(provenance: Provenance) -> list[str]:
    lines = ["## Source", ""]
    hub = [source for source in provenance.sources if source.hub_commit]
    for source in provenance.sources:
        if source.hub_commit:
            url, commit = _SOURCE_URL.format(repo=source.hub_repo), source.hub_commit
            text = f"[{source.hub_repo}]({url}) at commit [`{commit}`]({url}/tree/{commit})"
        else:
            text = source.description
        count = f" — {source.shards} shards" if len(provenance.sources) > 1 or provenance.unrecorded else ""
        lines.append(f"- {text}{count}")
    if not provenance.sources:
        lines.append("- not recorded (the shards were not built through the project's Dagster instance)")
    elif provenance.unrecorded:
        lines.append(f"- {provenance.unrecorded} shards without a recorded build")
    if len(hub) == 1 and len(provenance.sources) == 1 and not provenance.unrecorded:
        source = hub[0]
        lines += [
            "",
            "To build it again, byte for byte:",
            "",
            "```bash",
            f"e6-assets build --source hf://datasets/{source.hub_repo}@{source.hub_commit}",
            "```",
        ]
    return lines


def render_card(facts: CardFacts) -> str:
    """The card as Markdown with YAML front matter."""
    c, prefix = facts.captions, facts.prefix
    lines = [_front_matter(facts), "", f"# {TITLE}", ""]
    if facts.provenance.synthetic:
        lines += [
            "> **Synthetic data.** Some or all shards were built from the project's generated sample, "
            "not from e621 captions. Do not train on it.",
            "",
        ]
    lines += [
        f"Captions for {c.rows:,} e621 posts, one per post, by the caption rule below, in 1000 tar shards "
        f"(`{prefix}NNNN.tar`, shard = post id % 1000) with an index beside each, and `meta_cap.tar.gz` "
        "for kohya sd-scripts.",
        "",
        "## Contents",
        "",
        "| | posts |",
        "| --- | ---: |",
        f"| with a caption row in the source | {c.rows:,} |",
        f'| caption from the model summaries (`response_finish_reason == "STOP"`) | {c.from_summary:,} |',
        f"| caption from the tags (the model did not finish) | {c.from_tags:,} |",
        f'| empty caption (no member in the tar; `""` in `meta_cap.json`) | {c.empty:,} |',
    ]
    if c.from_override:  # only then: a card built without overrides stays byte for byte the same
        models = ", ".join(f"{model} {count:,}" for model, count in c.override_models.items())
        lines.append(f"| caption replaced by a recaptioning model ({models}) | {c.from_override:,} |")
    lines += [
        f"| members in the tars | {facts.tar_members:,} |",
        "",
        f"{c.duplicates_dropped:,} source rows were dropped as duplicates of a later row of the same id. "
        f"The tars hold {facts.tar_bytes:,} bytes in all.",
        "",
    ]
    if facts.merge is not None:
        m = facts.merge
        lines += [
            "### Merged with the posts that have images",
            "",
            "`meta_lat_v2.tar.gz` merges the captions into a kohya `meta_lat.json` of the posts that have "
            "images and latents. A post without a caption gets its tags as the caption and is listed in "
            "`missing.json`.",
            "",
            "| ids | missing caption | missing tags | missing latent |",
            "| ---: | ---: | ---: | ---: |",
            f"| {m.ids:,} | {m.missing_caption:,} | {m.missing_tags:,} | {m.missing_latent:,} |",
            "",
            f"Log line: `{m.summary_line()}`",
            "",
        ]
    lines += [
        "## Layout",
        "",
        "| path | what it is |",
        "| --- | --- |",
        f"| `{prefix}NNNN.tar` | one `{{id}}.caption` member per post with a non-empty caption: UTF-8, no "
        "trailing newline, ascending id, written as Python's `tarfile` writes it |",
        f"| `{prefix}NNNN.json` | the tar's index in the `hfutils` format: `filesize`, `hash` (git blob "
        "sha1), `hash_lfs` (sha256) and each member's `offset`, `size` and `sha256`, to read one caption "
        "with an HTTP range request (as `cheesechaser` does) |",
        '| `meta_cap.tar.gz` | `meta_cap.json`: `{"<id>": {"caption": "..."}}` for every post, empty '
        "captions included, keys ascending, as `json.dumps(indent=2)` writes it |",
    ]
    if facts.merge is not None:
        lines += [
            '| `meta_lat_v2.tar.gz` | `meta_lat_v2.json`: `{"<id>": {"tags", "caption", '
            '"train_resolution"}}` for every id of the universe |',
            '| `missing.json` | `{"tags": [...], "caption": [...], "latent": [...]}`: the ids missing each |',
        ]
    lines += [
        "",
        "Shard `NNNN` holds the posts whose id % 1000 is `NNNN`, as in the image, tag and latent 1k-tar "
        "datasets of the same layout.",
        "",
        "## The caption rule",
        "",
        "```py",
        'parts = [regular_summary, brief_summary] if response_finish_reason == "STOP" else [tags]',
        "parts = [p for p in parts if p]  # null, absent and empty parts are dropped",
        'caption = " ".join(parts).replace("\\n", "").replace("\\r", "")',
        "```",
        "",
        "Newlines are deleted, not replaced: the trainer reads each line of a caption as a variant. When "
        "an id appears more than once in the source, the row of the later monthly file wins, then the "
        "later line.",
        "",
        "## Reading",
        "",
        "```py",
        "import tarfile",
        "from huggingface_hub import hf_hub_download",
        "",
        f'path = hf_hub_download("{facts.repo_id}", "{prefix}0042.tar", repo_type="dataset")',
        "with tarfile.open(path) as tar:",
        "    captions = {m.name.removesuffix('.caption'): tar.extractfile(m).read().decode() for m in tar}",
        "```",
        "",
        "With `datasets`, `load_dataset(..., streaming=True)` yields `__key__` (the post id) and `caption` "
        "(UTF-8 bytes) per post.",
        "",
        *_source_section(facts.provenance),
        "",
        f"Licence: CC BY-NC-SA 4.0, as the source. Built with the e6_assets project; "
        f"published to `{facts.repo_id}` by `e6-assets publish`.",
        "",
    ]
    return "\n".join(lines)
