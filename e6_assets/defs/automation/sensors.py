"""The automation sensor: evaluates the assets' automation conditions and launches what they request."""

from __future__ import annotations

import dagster as dg

from e6_assets.run_recovery import recover_dead_runs

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


RECOVERY_SENSOR = "recover_dead_runs"


def build_recovery_sensor(minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """Marks failed the runs of ``e6-assets build`` whose process is gone and frees their pool
    slots (``e6_assets.run_recovery``), so that a killed command-line build does not block the
    pool, the automation sensor and the fill schedule until the next build. Running by default."""

    @dg.sensor(
        name=RECOVERY_SENSOR,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks failed the runs of `e6-assets build` on this host whose process is gone (killed or "
            "crashed), and frees the pool slots they and other finished runs still hold. Requests no runs."
        ),
    )
    def recover_dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        dead = recover_dead_runs(context.instance)
        if not dead:
            return dg.SkipReason("no run of a dead e6-assets process")
        return dg.SkipReason("marked failed: " + ", ".join(run.run_id for run in dead))

    return recover_dead_runs_sensor
