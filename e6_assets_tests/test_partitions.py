import pytest

from e6_assets.core.shards import SHARD_KEYS, parse_shard_range, shard_key
from e6_assets.defs.partitions import SHARDS


def test_shards_are_the_thousand_four_digit_keys():
    assert SHARDS.get_partition_keys() == SHARD_KEYS
    assert SHARD_KEYS[0] == "0000" and SHARD_KEYS[-1] == "0999" and len(SHARD_KEYS) == 1000


def test_post_belongs_to_shard_of_id_mod_1000():
    assert shard_key(4_441_660) == "0660"
    assert shard_key(7) == "0007"
    assert shard_key(1000) == "0000"


def test_shard_range_forms():
    assert parse_shard_range("0000...0999") == SHARD_KEYS
    assert parse_shard_range("0042") == ["0042"]
    assert parse_shard_range("0005,0001...0002") == ["0001", "0002", "0005"]


@pytest.mark.parametrize("text", ["42", "1000", "abcd", "0009...0001", "00001"])
def test_unknown_shard_keys_are_rejected(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard_range(text)
