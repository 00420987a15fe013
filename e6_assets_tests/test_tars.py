import io
import json
import random
import tarfile

import pytest
from hfutils.index import tar_get_index_info

from e6_assets.core.tars import TarIndex, build_tar, index_problems, write_tar


def _tarfile_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """What Python's tarfile writes for default TarInfo members: the reference."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _members(count: int, seed: int = 1) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    return [
        (f"{post_id}.caption", ("é 日本 " * rng.randint(0, 90) + "x" * rng.randint(0, 600)).encode())
        for post_id in sorted(rng.sample(range(1, 10**7), count))
    ]


@pytest.mark.parametrize("count", [0, 1, 37, 500])
def test_tar_bytes_equal_what_tarfile_writes(count):
    members = _members(count)
    tar, _ = build_tar(members)
    assert tar == _tarfile_bytes(members)


def test_member_sizes_on_block_boundaries_are_padded_like_tarfile():
    members = [(f"{n}.caption", b"a" * size) for n, size in enumerate([0, 511, 512, 513, 1024, 10240])]
    assert build_tar(members)[0] == _tarfile_bytes(members)


def test_index_equals_hfutils_index_of_the_same_tar(tmp_path):
    members = _members(200, seed=7)
    tar_path, index_path = tmp_path / "0007.tar", tmp_path / "0007.json"
    write_tar(tar_path, index_path, members)
    ours = json.loads(index_path.read_bytes())
    assert ours == tar_get_index_info(str(tar_path), silent=True)


def test_member_read_back_by_offset_from_index(tmp_path):
    members = _members(50, seed=3)
    tar_path, index_path = tmp_path / "0003.tar", tmp_path / "0003.json"
    index = write_tar(tar_path, index_path, members)
    name, content = members[17]
    entry = index.files[name]
    with open(tar_path, "rb") as handle:
        handle.seek(entry["offset"])
        assert handle.read(entry["size"]) == content


def test_index_problems_detect_a_tar_that_changed(tmp_path):
    tar_path, index_path = tmp_path / "0001.tar", tmp_path / "0001.json"
    index = write_tar(tar_path, index_path, _members(10))
    assert index_problems(tar_path, index) == []
    data = bytearray(tar_path.read_bytes())
    data[600] ^= 0xFF  # inside the first member's content
    tar_path.write_bytes(bytes(data))
    problems = index_problems(tar_path, TarIndex.from_json(index_path.read_bytes()))
    assert any("sha256" in problem for problem in problems)


def test_write_leaves_no_temporary_files(tmp_path):
    write_tar(tmp_path / "0000.tar", tmp_path / "0000.json", _members(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000.json", "0000.tar"]
