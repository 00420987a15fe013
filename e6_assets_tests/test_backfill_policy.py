"""E6_SHARDS_PER_RUN: how a backfill of a range of shards is cut into runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from e6_assets.defs.per_shard import shard_backfill_policy


@pytest.mark.parametrize("value", [None, "", "0"])
def test_without_a_number_a_range_is_one_run(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("E6_SHARDS_PER_RUN", raising=False)
    else:
        monkeypatch.setenv("E6_SHARDS_PER_RUN", value)
    assert shard_backfill_policy() == dg.BackfillPolicy.single_run()


def test_a_number_cuts_a_range_into_runs_of_that_many_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E6_SHARDS_PER_RUN", " 25 ")
    assert shard_backfill_policy() == dg.BackfillPolicy.multi_run(25)


@pytest.mark.parametrize("value", ["-5", "ten", "2.5"])
def test_anything_else_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("E6_SHARDS_PER_RUN", value)
    with pytest.raises(ValueError, match="E6_SHARDS_PER_RUN must be a whole number"):
        shard_backfill_policy()


def test_every_per_shard_asset_takes_the_policy_when_the_code_location_loads() -> None:
    script = (
        "import json; from e6_assets.definitions import defs\n"
        "from e6_assets.defs.assets import PER_SHARD_ASSETS\n"
        "print(json.dumps({k.to_user_string(): defs.resolve_assets_def(k).backfill_policy"
        ".max_partitions_per_run for a in PER_SHARD_ASSETS for k in a.keys}))"
    )
    env = {**os.environ, "E6_SHARDS_PER_RUN": "25", "PYTHONWARNINGS": "ignore"}
    loaded = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    policies = json.loads(loaded.stdout)
    assert set(policies) >= {"raw_captions", "rearranged_captions", "caption_tars"}
    assert set(policies.values()) == {25}
