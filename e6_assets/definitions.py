"""The code location: assets, checks, jobs and resources, assembled from the per-domain modules."""

from __future__ import annotations

import os

import dagster as dg

from e6_assets.assets import ALL_ASSETS
from e6_assets.jobs import JOBS
from e6_assets.resources import CaptionSource, DataDir, IdUniverse


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "source": CaptionSource(spec=dg.EnvVar("E6_SOURCE")),
        "data_dir": DataDir(path=dg.EnvVar("E6_DATA_DIR")),
        "id_universe": id_universe_resource(),
    }


def id_universe_resource() -> IdUniverse:
    """``E6_ID_UNIVERSE`` when set and not empty; otherwise an unconfigured resource (merge assets skip).

    ``dg.EnvVar`` fails a run when the variable is unset, so it is only used when there is a value.
    """
    fields: dict = {}
    if os.environ.get("E6_ID_UNIVERSE", "").strip():
        fields["spec"] = dg.EnvVar("E6_ID_UNIVERSE")
    if threshold := os.environ.get("E6_MISSING_CAPTION_WARN", "").strip():
        try:
            fields["missing_caption_warn_fraction"] = float(threshold)
        except ValueError:
            raise ValueError(
                f"E6_MISSING_CAPTION_WARN={threshold!r}: expected a fraction such as 0.05"
            ) from None
    return IdUniverse(**fields)


defs = dg.Definitions(assets=ALL_ASSETS, jobs=JOBS, resources=resources())
