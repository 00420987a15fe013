"""The code location: assets, checks, jobs, schedules, sensors and resources, assembled from the
per-domain modules."""

from __future__ import annotations

import dagster as dg

from e6_assets.core.settings import DEFAULTS
from e6_assets.defs.assets import ALL_ASSETS, PUBLISH_ASSETS, RECAPTION_ASSETS
from e6_assets.defs.automation.schedules import (
    build_fill_schedule,
    build_observe_overrides_schedule,
    build_observe_schedule,
    observe_caption_overrides,
    observe_source,
)
from e6_assets.defs.automation.sensors import build_automation_sensor, build_recovery_sensor
from e6_assets.defs.jobs import JOBS, build_shards
from e6_assets.defs.resources import CaptionSource, DataDir, HubPublishTarget, IdUniverse, Recaption

DEFAULT_OBSERVE_CRON = "0 * * * *"  # hourly
DEFAULT_FILL_CRON = "0 3 * * 0"  # Sundays 03:00 UTC
DEFAULT_AUTOMATION_INTERVAL = "60"  # seconds between evaluations of the automation conditions


def setting(name: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set where the code location loads, else its default
    (``e6_assets.core.settings.DEFAULTS``, the same as the command line's).

    ``dg.EnvVar`` has no default: a run fails when its variable is unset. Deciding when the code
    location loads keeps the environment in charge (a set variable is read by each run, from its own
    environment) while a bare ``dagster dev`` or ``dg dev`` runs with the defaults.
    """
    return dg.EnvVar(name) if dg.EnvVar(name).get_value() is not None else DEFAULTS[name]


def resources() -> dict[str, dg.ConfigurableResource]:
    """Every setting from the environment, or its default when unset (see the README)."""
    return {
        "source": CaptionSource(spec=setting("E6_SOURCE")),
        "data_dir": DataDir(path=setting("E6_DATA_DIR")),
        "id_universe": IdUniverse(
            spec=setting("E6_ID_UNIVERSE"), missing_caption_warn=setting("E6_MISSING_CAPTION_WARN")
        ),
        # Reads E6_PUBLISH_* itself when hub_release runs: unset means "not configured", not an error.
        "publish_target": HubPublishTarget(),
        "recaption": Recaption(
            overrides=setting("E6_CAPTION_OVERRIDES"),
            work_lists=setting("E6_RECAPTION_LISTS"),
            tag_only_warn=setting("E6_TAG_ONLY_WARN"),
        ),
    }


def build_defs() -> dg.Definitions:
    """Schedules and the sensor take their timing from E6_OBSERVE_CRON, E6_FILL_CRON and
    E6_AUTOMATION_INTERVAL_SECONDS when the code location loads (defaults above)."""
    observe_cron = dg.EnvVar("E6_OBSERVE_CRON").get_value(DEFAULT_OBSERVE_CRON) or DEFAULT_OBSERVE_CRON
    fill_cron = dg.EnvVar("E6_FILL_CRON").get_value(DEFAULT_FILL_CRON) or DEFAULT_FILL_CRON
    interval = dg.EnvVar("E6_AUTOMATION_INTERVAL_SECONDS").get_value(DEFAULT_AUTOMATION_INTERVAL)
    return dg.Definitions(
        assets=[*ALL_ASSETS, *PUBLISH_ASSETS, *RECAPTION_ASSETS],
        jobs=[*JOBS, observe_source, observe_caption_overrides],
        schedules=[
            build_observe_schedule(observe_cron),
            build_fill_schedule(fill_cron, build_shards),
            build_observe_overrides_schedule(observe_cron),
        ],
        sensors=[
            build_automation_sensor(int(interval or DEFAULT_AUTOMATION_INTERVAL)),
            build_recovery_sensor(),
        ],
        resources=resources(),
    )


defs = build_defs()
