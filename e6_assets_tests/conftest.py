"""Shared fixtures: a small sample source, a data root, and an ephemeral Dagster instance."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg
import orjson
import pytest

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.sample import write_sample
from e6_assets.core.shards import shard_key
from e6_assets.core.sources import resolve_local

pytest_plugins = ["e6_assets_tests.services"]  # PostgreSQL and Redis for the deployment tests

SAMPLE_ROWS = 3_000

# The Hub is never reached from the tests: huggingface_hub reads this once, when first imported.
os.environ["HF_HUB_OFFLINE"] = "1"
# Optional settings, empty: not configured (as their defaults in the code location are).
os.environ.setdefault("E6_ID_UNIVERSE", "")
os.environ.setdefault("E6_MISSING_CAPTION_WARN", "")
for _name in ("E6_CAPTION_OVERRIDES", "E6_RECAPTION_LISTS", "E6_TAG_ONLY_WARN"):
    os.environ.setdefault(_name, "")

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic sample's monthly files (3,000 rows), written once per test session."""
    folder = tmp_path_factory.mktemp("sample-source")
    write_sample(folder, rows=SAMPLE_ROWS)
    return folder


@pytest.fixture(scope="session")
def full_build(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> DataLayout:
    """Every shard and the merged files of the sample, built once by the plain pipeline: the bytes
    any build of the sample must produce."""
    layout = DataLayout(tmp_path_factory.mktemp("full") / "data")
    pipeline.build(resolve_local(sample_dir), layout)
    return layout


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def e6_env(monkeypatch: pytest.MonkeyPatch, sample_dir: Path, data_dir: Path) -> Path:
    """Point E6_SOURCE at the sample folder and E6_DATA_DIR at a fresh data root."""
    monkeypatch.setenv("E6_SOURCE", str(sample_dir))
    monkeypatch.setenv("E6_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def change_one_caption(
    source: Path, shards: list[str], text: str = "A corrected caption of a fox in the snow"
) -> str:
    """Rewrite the regular_summary of one row of one of ``shards`` (the same row for the same
    ``shards``) to ``text``; returns that row's shard."""
    for path in sorted(source.glob("*_grouped.jsonl"), reverse=True):
        lines = path.read_bytes().split(b"\n")
        for index, line in enumerate(lines):
            if not line:
                continue
            row = orjson.loads(line)
            good = row.get("response_finish_reason") == "STOP" and row.get("regular_summary")
            if good and shard_key(row["id"]) in shards:
                row["regular_summary"] = text
                lines[index] = orjson.dumps(row)
                path.write_bytes(b"\n".join(lines))
                return shard_key(row["id"])
    raise AssertionError("no row with a summary in the given shards")
