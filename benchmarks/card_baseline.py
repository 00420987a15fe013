"""The dataset card's approach, step by step, as the baseline the build is measured against.

Follows the author's scripts: ``pandas.read_json(lines=True)`` per monthly file, a per-row Python loop
over every row into one dict, ``tarfile`` for each shard, and ``json.dumps(indent=2)`` of the whole
metadata in one string. Two changes only, so that it finishes on the sample: null parts are skipped
instead of crashing ``" ".join`` (the card's script fails on them), and duplicates resolve by file
order (the card's resolve in whatever order its threads finish).

    python benchmarks/card_baseline.py SOURCE_DIR OUT_DIR
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pandas as pd


def caption_of(row) -> str:
    parts = [row.regular_summary, row.brief_summary] if row.response_finish_reason == "STOP" else [row.tags]
    must_exist = [part for part in parts if isinstance(part, str) and part]
    return " ".join(must_exist).replace("\n", "").replace("\r", "")


def main(source: Path, out: Path) -> None:
    captions: dict[int, str] = {}
    wanted = ["id", "tags", "regular_summary", "brief_summary", "response_finish_reason"]
    for path in sorted(source.glob("*_grouped.jsonl")):
        if path.stat().st_size == 0:
            continue
        frame = pd.read_json(path, lines=True)
        for name in wanted:
            if name not in frame:
                frame[name] = None
        for row in frame[wanted].itertuples(index=False):
            captions[int(row.id)] = caption_of(row)

    by_shard: dict[int, list[int]] = {}
    for post_id in captions:
        by_shard.setdefault(post_id % 1000, []).append(post_id)
    (out / "captions").mkdir(parents=True, exist_ok=True)
    for shard in range(1000):
        with tarfile.open(out / "captions" / f"{shard:04d}.tar", "w") as archive:
            for post_id in sorted(by_shard.get(shard, [])):
                data = captions[post_id].encode()
                if data:
                    info = tarfile.TarInfo(f"{post_id}.caption")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))

    meta = {str(post_id): {"caption": captions[post_id]} for post_id in sorted(captions)}
    (out / "meta_cap.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
