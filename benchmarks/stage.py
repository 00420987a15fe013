"""Run one step of the build over all shards, as its own process (so its peak memory is its own).

python benchmarks/stage.py STEP SOURCE_DIR DATA_DIR [SHARD ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from e6_assets import pipeline
from e6_assets.layout import DataLayout
from e6_assets.shards import SHARD_KEYS
from e6_assets.sources import resolve_local


def main(step: str, source_dir: str, data_dir: str, shards: list[str]) -> None:
    source, layout = resolve_local(Path(source_dir)), DataLayout(Path(data_dir))
    keys = shards or SHARD_KEYS
    if step == "stage":
        pipeline.stage(source, layout)
    elif step == "raw":
        for _ in pipeline.write_raw_shards(source, layout, keys):
            pass
    elif step == "rearrange":
        for key in keys:
            pipeline.rearrange_shard(layout, key)
    elif step == "tars":
        for key in keys:
            problems = pipeline.tar_shard(layout, key).problems
            if problems:
                raise SystemExit(f"shard {key}: {problems}")
    elif step == "fragments":
        for key in keys:
            pipeline.fragment_shard(layout, key)
    elif step == "merge":
        if not pipeline.merge_meta_cap(layout).totals_match:
            raise SystemExit("merged totals differ from the shards'")
    elif step == "shard":  # every per-shard step, for a rerun of a few shards
        pipeline.stage(source, layout)
        for _ in pipeline.write_raw_shards(source, layout, keys):
            pass
        for key in keys:
            pipeline.rearrange_shard(layout, key)
            pipeline.tar_shard(layout, key)
            pipeline.fragment_shard(layout, key)
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
