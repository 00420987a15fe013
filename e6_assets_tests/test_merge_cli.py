"""``e6-assets build`` with an id universe prints the dataset card's summary line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e6_assets.cli import main
from e6_assets.core.sample import write_sample_universe
from e6_assets.core.shards import SHARD_KEYS
from e6_assets_tests.conftest import SAMPLE_ROWS
from e6_assets_tests.merge_support import (
    captions_by_id,
    copy_rearranged,
    fragments_without_dagster,
    prepared_captions,
    reference_counts,
)


def test_build_with_a_universe_prints_the_summary_line(
    e6_env: Path,
    sample_dir: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every other shard is already built (by the same functions); the command builds two and merges.
    layout = copy_rearranged(prepared_captions(sample_dir, tmp_path_factory), e6_env)
    universe = write_sample_universe(tmp_path / "meta_lat.json", SAMPLE_ROWS)
    fragments_without_dagster(layout, universe, SHARD_KEYS[2:])
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))

    assert main(["build", "--shards", "0000...0001", "--id-universe", str(universe)]) == 0

    expected = reference_counts(json.loads(universe.read_bytes()), captions_by_id(layout)).summary_line()
    output = capsys.readouterr().out
    assert f"wrote {layout.meta_lat_v2_json} and {layout.missing_json}: {expected}\n" in output
