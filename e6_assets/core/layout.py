"""Where every output lives under the data root (``E6_DATA_DIR``, default ``./data``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e6_assets.core.shards import SHARD_KEYS


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def staged_dir(self) -> Path:
        return self.root / "staged"

    def raw(self, shard: str) -> Path:
        return self.root / "raw" / f"{shard}.parquet"

    def rearranged(self, shard: str) -> Path:
        return self.root / "rearranged" / f"{shard}.parquet"

    def tar(self, shard: str) -> Path:
        return self.root / "captions" / f"{shard}.tar"

    def tar_index(self, shard: str) -> Path:
        return self.root / "captions" / f"{shard}.json"

    def meta_cap_fragment(self, shard: str) -> Path:
        return self.root / "meta_cap" / f"{shard}.arrow"

    @property
    def meta_cap_json(self) -> Path:
        return self.root / "meta_cap.json"

    @property
    def meta_cap_tar_gz(self) -> Path:
        return self.root / "meta_cap.tar.gz"

    def missing_fragments(self) -> list[str]:
        return [shard for shard in SHARD_KEYS if not self.meta_cap_fragment(shard).exists()]

    # Caption overrides (E6_CAPTION_OVERRIDES) and the recaption queue: see overrides.py, recaption.py.
    @property
    def overrides_dir(self) -> Path:
        return self.root / "overrides"

    def override_shard(self, shard: str) -> Path:
        return self.overrides_dir / f"{shard}.parquet"

    def recaption_queue(self, shard: str) -> Path:
        return self.root / "recaption_queue" / f"{shard}.parquet"

    @property
    def recaption_lists_dir(self) -> Path:
        return self.root / "recaption"

    def missing_recaption_queues(self) -> list[str]:
        return [shard for shard in SHARD_KEYS if not self.recaption_queue(shard).exists()]

    # The merge with the id universe (E6_ID_UNIVERSE): see merge.py and universe.py.
    @property
    def universe_stage_dir(self) -> Path:
        return self.root / "staged-universe"

    def meta_lat_fragment(self, shard: str) -> Path:
        return self.root / "meta_lat_v2" / f"{shard}.arrow"

    @property
    def meta_lat_v2_json(self) -> Path:
        return self.root / "meta_lat_v2.json"

    @property
    def missing_json(self) -> Path:
        return self.root / "missing.json"

    def missing_meta_lat_fragments(self) -> list[str]:
        return [shard for shard in SHARD_KEYS if not self.meta_lat_fragment(shard).exists()]
