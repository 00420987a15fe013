"""Automation conditions shared by the caption assets, evaluated by the sensor in ``sensors.py``."""

from __future__ import annotations

import dagster as dg

AC = dg.AutomationCondition
# Observed sources that are optional settings: a shard with no caption overrides records no
# observation at all (recording one per shard would rebuild every shard once), and the id universe is
# observed only where it is configured. Neither counts as a missing dependency.
OPTIONAL_SOURCES = dg.AssetSelection.assets("caption_overrides", "id_universe")


def upstream_changed() -> dg.AutomationCondition:
    """Since the last tick, an observed source dependency recorded a new data version, or a built
    dependency was materialized, by a run that did not already build this asset; or a dependency is
    requested on this tick and can run in the same run.

    The observed sources (``caption_source``, ``id_universe``) record versions from their content,
    ``caption_source`` only for the shards whose rows changed. A built dependency counts when it is
    rebuilt, whatever its content: recording a content version per shard would cost four thousand
    more stored events per full build, to save rebuilds that only happen when a shard was rebuilt
    by hand with nothing changed.
    """
    observed = dg.AssetSelection.all(include_sources=True) - dg.AssetSelection.all()
    updated_elsewhere = ~AC.executed_with_root_target()
    return (
        AC.any_deps_match((AC.data_version_changed() & updated_elsewhere).with_label("new_data_version"))
        .allow(observed)
        .with_label("source_changed")
        | AC.any_deps_match((AC.newly_updated() & updated_elsewhere).with_label("rebuilt"))
        .ignore(observed)
        .with_label("dependency_rebuilt")
        | AC.any_deps_match(AC.will_be_requested())
    ).with_label("upstream_changed")


def rebuild_on_change() -> dg.AutomationCondition:
    """Request a shard (or the merged asset) once after its upstream changed or its code_version
    changed, when no dependency is missing or running and every upstream blocking check passed."""
    return (
        (upstream_changed() | AC.code_version_changed()).since_last_handled()
        & ~AC.any_deps_missing().ignore(OPTIONAL_SOURCES)
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
    ).with_label("rebuild_on_change")
