"""Where the monthly caption files come from: a local folder, the Hub, or the synthetic sample.

Each source resolves to a sorted list of local ``YYYY-MM_grouped.jsonl`` paths plus a description
of what they are (the Hub commit, or the fact that the data is synthetic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from e6_assets.core.jsonl import is_month_file

DEFAULT_HUB_REPO = "lodestones/e621-captions"
MONTH_FILE_PATTERN = "*_grouped.jsonl"
_HF_URL = re.compile(r"^hf://datasets/(?P<repo>[^/@]+/[^/@]+)(?:/(?P<path>[^@]+))?(?:@(?P<rev>.+))?$")


class SourceNotFound(ValueError):
    """The source cannot be used at all (missing folder, no monthly files, bad spec)."""


@dataclass(frozen=True)
class HubLocation:
    repo_id: str
    path: str | None
    revision: str


def parse_hf_url(url: str) -> HubLocation:
    """``hf://datasets/OWNER/REPO[/PATH][@REV]`` -> its parts (revision defaults to ``main``)."""
    match = _HF_URL.match(url)
    if not match:
        raise SourceNotFound(f"not a Hub dataset address: {url!r} (expected hf://datasets/OWNER/REPO[@REV])")
    return HubLocation(match["repo"], match["path"], match["rev"] or "main")


@dataclass(frozen=True)
class ResolvedSource:
    files: list[Path]
    description: str
    synthetic: bool = False
    revision: str | None = None  # the Hub commit sha, when the files come from the Hub
    metadata: dict[str, str | int | bool] = field(default_factory=dict)


def month_files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceNotFound(f"source folder {folder} does not exist")
    files = sorted(path for path in folder.iterdir() if is_month_file(path.name))
    if not files:
        raise SourceNotFound(f"source folder {folder} has no YYYY-MM_grouped.jsonl files")
    return files


def resolve_local(folder: Path) -> ResolvedSource:
    files = month_files_in(folder)
    return ResolvedSource(files, f"local folder {folder}", metadata={"source_folder": str(folder)})


def resolve_hub(url: str, cache_dir: str | None = None) -> ResolvedSource:
    """Download (or find in the Hub cache) every monthly file of the dataset at a revision.

    ``snapshot_download`` lists the repository's files at the revision, so new months are picked
    up without guessing names; it honours ``HF_TOKEN``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE``.
    """
    from huggingface_hub import snapshot_download

    location = parse_hf_url(url)
    folder = Path(
        snapshot_download(
            location.repo_id,
            repo_type="dataset",
            revision=location.revision,
            allow_patterns=[MONTH_FILE_PATTERN],
            cache_dir=cache_dir,
        )
    )
    commit = folder.name  # snapshot folders are named by the resolved commit sha
    files = month_files_in(folder)
    return ResolvedSource(
        files,
        f"hf://datasets/{location.repo_id}@{commit}",
        revision=commit,
        metadata={"hub_repo": location.repo_id, "hub_revision": location.revision, "hub_commit": commit},
    )
