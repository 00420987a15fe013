"""Run one step of the build over all shards, as its own process (so its peak memory is its own).

python benchmarks/stage.py STEP SOURCE_DIR DATA_DIR [SHARD ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.parallel import worker_count
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.sources import resolve_local


def main(step: str, source_dir: str, data_dir: str, shards: list[str]) -> None:
    source, layout = resolve_local(Path(source_dir)), DataLayout(Path(data_dir))
    keys = shards or SHARD_KEYS
    workers = worker_count()  # E6_WORKERS, else every core: as the build runs them
    if step == "stage":
        pipeline.stage(source, layout, workers)
    elif step == "raw":
        for _ in pipeline.write_raw_shards(source, layout, keys, workers):
            pass
    elif step == "rearrange":
        for _ in pipeline.map_shards(pipeline.rearrange_shard, layout, keys, workers):
            pass
    elif step == "tars":
        for key, result in pipeline.map_shards(pipeline.tar_shard, layout, keys, workers):
            if result.problems:
                raise SystemExit(f"shard {key}: {result.problems}")
    elif step == "merge":
        if not pipeline.merge_meta_cap(layout, workers).totals_match:
            raise SystemExit("merged totals differ from the shards'")
    elif step == "shard":  # every per-shard step, for a rerun of a few shards
        pipeline.build(source, layout, keys, workers)
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
