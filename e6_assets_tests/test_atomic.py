"""Atomic writes: a failed write keeps the previous file; a killed writer's leftovers are removed."""

import contextlib
import errno
import resource
import subprocess
from collections.abc import Iterator

import pytest

from e6_assets.core.atomic import WriteError, atomic_write_bytes, remove_stale_temp_files, temp_suffix
from e6_assets.core.processes import hostname


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail in the kernel (EFBIG), as they would on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_write_that_fails_keeps_the_previous_file_and_names_it(tmp_path):
    target = tmp_path / "captions" / "0042.tar"
    atomic_write_bytes(target, b"previous")
    with _file_size_limit(1 << 16), pytest.raises(WriteError) as caught:
        atomic_write_bytes(target, b"x" * (1 << 20))
    assert caught.value.errno == errno.EFBIG
    assert str(caught.value).endswith(f"cannot write {target}: File too large; the previous file is kept")
    assert target.read_bytes() == b"previous"
    assert sorted(path.name for path in target.parent.iterdir()) == ["0042.tar"]


def test_only_leftovers_of_writers_that_are_gone_are_removed(tmp_path):
    (tmp_path / "raw").mkdir()
    dead = tmp_path / "raw" / f".0001.parquet.abcd1234.{_dead_pid()}@{hostname()}.tmp"
    live = tmp_path / "raw" / f".0002.parquet.abcd1234{temp_suffix()}"
    elsewhere = tmp_path / "raw" / f".0003.parquet.abcd1234.{_dead_pid()}@another-host.tmp"
    older = tmp_path / ".meta_cap.json.k2j3h4g5.tmp"  # written before temporary names carried a writer
    folder = tmp_path / "staged-universe" / f".staging-x1y2z3.{_dead_pid()}@{hostname()}.tmp"
    folder.mkdir(parents=True)
    (folder / "bucket-00.parquet").write_bytes(b"half")
    final = tmp_path / "raw" / "0001.parquet"
    for path in (dead, live, elsewhere, older, final):
        path.write_bytes(b"x")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted([dead, older, folder])
    assert {path for path in tmp_path.rglob("*") if path.is_file()} == {live, elsewhere, final}
