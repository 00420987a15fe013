"""The data work of the build, in plain modules that never import Dagster: reading the source, the
caption rule, tars and their index, streamed JSON, the merge, the recaption queue and a Hub release.

The Dagster layer (``e6_assets.defs``) calls these and records what they return; the benchmarks and
the unit tests call them directly. ``e6_assets_tests/test_layout.py`` imports every module here with
Dagster unavailable.
"""
