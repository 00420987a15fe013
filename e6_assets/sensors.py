"""The automation sensor: evaluates the assets' automation conditions and launches what they request."""

from __future__ import annotations

import dagster as dg

AUTOMATION_SENSOR = "caption_automation"


def build_automation_sensor(minimum_interval_seconds: int = 60) -> dg.AutomationConditionSensorDefinition:
    """Requests of many shards become one backfill (``emit_backfills``), which runs each contiguous
    range of shards as one run thanks to the assets' single-run backfill policy. Stopped until
    turned on in the UI."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        emit_backfills=True,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Rebuilds only the shards whose upstream data version or code_version changed (after an "
            "observation of caption_source finds changed shards), as one backfill; then meta_cap once."
        ),
    )
