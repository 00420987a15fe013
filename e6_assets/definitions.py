"""The code location: assets, checks, jobs and resources, assembled from the per-domain modules."""

from __future__ import annotations

import dagster as dg

from e6_assets.assets import ALL_ASSETS
from e6_assets.jobs import JOBS
from e6_assets.resources import CaptionSource, DataDir


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "source": CaptionSource(spec=dg.EnvVar("E6_SOURCE")),
        "data_dir": DataDir(path=dg.EnvVar("E6_DATA_DIR")),
    }


defs = dg.Definitions(assets=ALL_ASSETS, jobs=JOBS, resources=resources())
