"""Dagster resources: where the source comes from (``E6_SOURCE``) and where outputs go (``E6_DATA_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from e6_assets.core.layout import DataLayout
from e6_assets.core.parallel import worker_count
from e6_assets.core.publish import DEFAULT_PREFIX, DEFAULT_REVISION, PublishTarget
from e6_assets.core.sample import DEFAULT_ROWS, resolve_sample
from e6_assets.core.settings import DEFAULTS
from e6_assets.core.sources import ResolvedSource, resolve_hub, resolve_local
from e6_assets.core.universe import ResolvedUniverse, resolve_universe


class CaptionSource(dg.ConfigurableResource):
    """The monthly caption files: ``sample[:ROWS]``, ``hf://datasets/OWNER/REPO[@REV]`` or a folder."""

    spec: str = DEFAULTS["E6_SOURCE"]
    hub_cache_dir: str | None = None  # default: huggingface_hub's own (HF_HUB_CACHE / HF_HOME)

    def resolve(self, data_dir: Path) -> ResolvedSource:
        spec = self.spec.strip()
        if spec == "sample" or spec.startswith("sample:"):
            rows = int(spec.partition(":")[2] or DEFAULT_ROWS)
            return resolve_sample(data_dir, rows)
        if spec.startswith("hf://"):
            return resolve_hub(spec, self.hub_cache_dir)
        return resolve_local(Path(spec).expanduser())


class DataDir(dg.ConfigurableResource):
    """The data root; every asset's files live under it (see ``DataLayout``). And how many worker
    processes a step spreads its shards over: ``workers`` if set, else ``E6_WORKERS``, else every core."""

    path: str = DEFAULTS["E6_DATA_DIR"]
    workers: int | None = None

    def layout(self) -> DataLayout:
        return DataLayout(Path(self.path).expanduser())

    def worker_count(self) -> int:
        return worker_count(self.workers)


DEFAULT_MISSING_CAPTION_WARN = 0.05


class IdUniverse(dg.ConfigurableResource):
    """The id universe to merge captions into (``E6_ID_UNIVERSE``); empty means not configured.

    ``spec``: a local ``meta_lat.json`` (or a ``.tar.gz`` holding it), ``hf://datasets/OWNER/REPO/PATH[@REV]``,
    or ``sample[:ROWS]``. Without it the merge assets skip, and the rest of the graph is unaffected.
    """

    spec: str = ""
    hub_cache_dir: str | None = None  # default: huggingface_hub's own (HF_HUB_CACHE / HF_HOME)
    # E6_MISSING_CAPTION_WARN: the fraction of a shard's ids without a caption above which its check warns.
    missing_caption_warn: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.spec.strip())

    @property
    def missing_caption_warn_fraction(self) -> float:
        text = self.missing_caption_warn.strip()
        try:
            fraction = float(text) if text else DEFAULT_MISSING_CAPTION_WARN
        except ValueError:
            fraction = -1.0
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(
                f"E6_MISSING_CAPTION_WARN={text!r}: expected a fraction from 0 to 1, such as 0.05"
            )
        return fraction

    def resolve(self, data_dir: Path) -> ResolvedUniverse:
        return resolve_universe(self.spec, data_dir, self.hub_cache_dir)


DEFAULT_RECAPTION_LISTS = 8
DEFAULT_TAG_ONLY_WARN = 0.25


class Recaption(dg.ConfigurableResource):
    """The recaption loop (``e6_assets.core.recaption``, ``e6_assets.core.overrides``); empty fields
    take the defaults.

    ``overrides``: ``E6_CAPTION_OVERRIDES``, the folder of captioner output (JSONL) laid over the
    captions; empty: no overrides. ``work_lists``: ``E6_RECAPTION_LISTS``, K, the number of work lists
    the queue is split into (``id % K``). ``tag_only_warn``: ``E6_TAG_ONLY_WARN``, the share of a
    shard's captions that come from tags above which its ``tag_only_share`` check warns.
    """

    overrides: str = ""
    work_lists: str = ""
    tag_only_warn: str = ""

    @property
    def overrides_folder(self) -> Path | None:
        text = self.overrides.strip()
        return Path(text).expanduser() if text else None

    @property
    def work_list_count(self) -> int:
        text = self.work_lists.strip()
        if not text:
            return DEFAULT_RECAPTION_LISTS
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"E6_RECAPTION_LISTS={text!r}: expected a whole number of work lists, 1 or more")
        return int(text)

    @property
    def tag_only_warn_fraction(self) -> float:
        text = self.tag_only_warn.strip()
        try:
            fraction = float(text) if text else DEFAULT_TAG_ONLY_WARN
        except ValueError:
            fraction = -1.0
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"E6_TAG_ONLY_WARN={text!r}: expected a fraction from 0 to 1, such as 0.25")
        return fraction


class HubPublishTarget(dg.ConfigurableResource):
    """Where ``hub_release`` publishes: a Hub dataset repo, its branch and the folder of the tars.

    A field left unset is read from the environment when the asset runs — ``E6_PUBLISH_REPO``
    (``OWNER/NAME``; unset or empty: publishing is not configured), ``E6_PUBLISH_REVISION``
    (default ``main``), ``E6_PUBLISH_PREFIX`` (default ``captions/``; empty: the repo's root),
    ``E6_PUBLISH_PRIVATE`` (``1`` creates a new repo private) — and then falls back to the default.
    (``dg.EnvVar`` has no default and fails the step when its variable is unset, but an unset
    E6_PUBLISH_REPO is a normal state.) The token is not a setting: huggingface_hub reads
    ``HF_TOKEN`` (or the login's token) itself, so it is in no config, log or metadata.
    """

    repo: str | None = None
    revision: str | None = None
    path_prefix: str | None = None
    private: bool | None = None
    endpoint: str | None = None  # default: huggingface_hub's own (HF_ENDPOINT)

    def target(self) -> PublishTarget | None:
        """The target, or None when no repo is configured; a ``ValueError`` names a bad setting."""

        def setting(value: str | None, name: str, default: str) -> str:
            return value if value is not None else os.environ.get(name, default)

        repo = setting(self.repo, "E6_PUBLISH_REPO", "").strip()
        if not repo:
            return None
        private = self.private
        if private is None:
            private = os.environ.get("E6_PUBLISH_PRIVATE", "").strip().lower() in ("1", "true", "yes")
        return PublishTarget(
            repo,
            setting(self.revision, "E6_PUBLISH_REVISION", DEFAULT_REVISION).strip() or DEFAULT_REVISION,
            setting(self.path_prefix, "E6_PUBLISH_PREFIX", DEFAULT_PREFIX),
            private,
            self.endpoint,
        )
