"""Dagster resources: where the source comes from (``E6_SOURCE``) and where outputs go (``E6_DATA_DIR``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from e6_assets.layout import DataLayout
from e6_assets.sample import DEFAULT_ROWS, resolve_sample
from e6_assets.sources import ResolvedSource, resolve_hub, resolve_local
from e6_assets.universe import ResolvedUniverse, resolve_universe


class CaptionSource(dg.ConfigurableResource):
    """The monthly caption files: ``sample[:ROWS]``, ``hf://datasets/OWNER/REPO[@REV]`` or a folder."""

    spec: str = "sample"
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
    """The data root; every asset's files live under it (see ``DataLayout``)."""

    path: str = "data"

    def layout(self) -> DataLayout:
        return DataLayout(Path(self.path).expanduser())


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
