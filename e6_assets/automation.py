"""Automation conditions shared by the caption assets (evaluated by the sensor in ``sensors.py``)."""

from __future__ import annotations

import dagster as dg

AC = dg.AutomationCondition


def upstream_changed() -> dg.AutomationCondition:
    """A dependency's data version changed since the last tick (by a run that did not already build
    this asset), or the dependency is requested on this tick and can run in the same run."""
    return AC.any_deps_match(
        (AC.data_version_changed() & ~AC.executed_with_root_target()).with_label(
            "data_version_changed_without_root"
        )
        | AC.will_be_requested()
    ).with_label("upstream_changed")


def rebuild_on_change() -> dg.AutomationCondition:
    """Request a shard (or the merged asset) once after its upstream content or its code_version
    changed, when no dependency is missing or running and every upstream blocking check passed."""
    return (
        (upstream_changed() | AC.code_version_changed()).since_last_handled()
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
    ).with_label("rebuild_on_change")
