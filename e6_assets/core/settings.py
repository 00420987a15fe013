"""The build's settings as environment variables, with their defaults: one table for the code location
(``definitions.resources``) and the ``e6-assets`` command line. Dagster-free, so the command line can
read it before importing Dagster."""

from __future__ import annotations

# Unset variables take these values; an empty value means "not configured" (the merge assets skip,
# the missing-caption threshold is IdUniverse's own default).
DEFAULTS = {
    "E6_SOURCE": "sample",
    "E6_DATA_DIR": "data",
    "E6_ID_UNIVERSE": "",
    "E6_MISSING_CAPTION_WARN": "",
    "E6_CAPTION_OVERRIDES": "",
    "E6_RECAPTION_LISTS": "",
    "E6_TAG_ONLY_WARN": "",
}
