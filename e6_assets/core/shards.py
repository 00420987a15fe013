"""The 1k-tar shard layout: post ``id`` belongs to shard ``f"{id % 1000:04d}"``."""

from __future__ import annotations

SHARD_COUNT = 1000
SHARD_KEYS: list[str] = [f"{i:04d}" for i in range(SHARD_COUNT)]


def shard_key(post_id: int) -> str:
    return f"{post_id % SHARD_COUNT:04d}"


def shard_number(key: str) -> int:
    """``"0042"`` -> ``42``; anything that is not one of the 1000 keys is a ``ValueError``."""
    if len(key) != 4 or not key.isdigit() or int(key) >= SHARD_COUNT:
        raise ValueError(f"unknown shard key {key!r}: expected four digits, 0000 to {SHARD_COUNT - 1:04d}")
    return int(key)


def parse_shard_range(text: str) -> list[str]:
    """Parse ``"0007"``, ``"0000...0999"`` or ``"0001,0005"`` into shard keys, in order."""
    keys: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if "..." in part:
            start, _, end = part.partition("...")
            first, last = shard_number(start.strip()), shard_number(end.strip())
            if first > last:
                raise ValueError(f"empty shard range {part!r}: {start} comes after {end}")
            keys.extend(SHARD_KEYS[first : last + 1])
        else:
            keys.append(SHARD_KEYS[shard_number(part)])
    return sorted(set(keys))
