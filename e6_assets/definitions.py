"""The code location: assets, checks, jobs and resources, assembled from the per-domain modules."""

from __future__ import annotations

import dagster as dg

from e6_assets.assets import ALL_ASSETS
from e6_assets.jobs import JOBS
from e6_assets.resources import CaptionSource, DataDir, IdUniverse


def resources() -> dict[str, dg.ConfigurableResource]:
    """Every setting comes from the environment (``e6-assets`` fills in defaults; see the README)."""
    return {
        "source": CaptionSource(spec=dg.EnvVar("E6_SOURCE")),
        "data_dir": DataDir(path=dg.EnvVar("E6_DATA_DIR")),
        "id_universe": IdUniverse(
            spec=dg.EnvVar("E6_ID_UNIVERSE"), missing_caption_warn=dg.EnvVar("E6_MISSING_CAPTION_WARN")
        ),
    }


defs = dg.Definitions(assets=ALL_ASSETS, jobs=JOBS, resources=resources())
