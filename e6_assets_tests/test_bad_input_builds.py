"""Builds from hostile input, as a user runs them: a 10 MB caption, a full disk, a leaked token."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

from e6_assets.core.layout import DataLayout
from e6_assets_tests.cli_process import HANG_GUARD_SECONDS, cli_env, instance_home, temp_files

CAPTION = ("A fox in the snow, " * 600_000)[:10_000_000]  # 10 MB, one line of JSON


def _write_source(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "2020-01_grouped.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return folder


def _build(tmp_path: Path, source: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # in the child: writes past the limit fail in the kernel, as on a full disk
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, hard))

    args = ["build", "--source", str(source), "--data-dir", "data", "--shards", "0042", "--no-merge"]
    return subprocess.run(
        [sys.executable, "-m", "e6_assets.cli", *args],
        cwd=tmp_path,
        env=cli_env(instance_home(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        preexec_fn=limit if file_size_limit else None,
    )


def test_a_full_disk_keeps_the_previous_files_and_a_10_mb_caption_builds_whole(tmp_path):
    rows = [{"id": 42, "tags": "fox snow"}, {"id": 1042, "tags": "wolf"}, {"id": 7, "tags": "cat"}]
    source = _write_source(tmp_path / "source", rows)
    assert _build(tmp_path, source).returncode == 0
    layout = DataLayout(Path("data"))  # as given on the command line, relative to tmp_path
    shard_files = [layout.rearranged("0042"), layout.meta_cap_fragment("0042")]
    shard_files += [layout.tar("0042"), layout.tar_index("0042")]
    before = {path: (tmp_path / path).read_bytes() for path in shard_files}

    long_row = {"id": 2042, "response_finish_reason": "STOP", "regular_summary": CAPTION, "tags": "x"}
    _write_source(source, [*rows, long_row])
    full = _build(tmp_path, source, file_size_limit=8 << 20)  # no 10 MB file can be written
    assert full.returncode == 1
    # The first output that holds the whole caption is the shard's meta_cap.json entries.
    assert full.stderr.endswith(
        "e6-assets: shard build failed: cannot write data/meta_cap/0042.arrow: File too large; "
        "the previous file is kept\n"
    )
    assert {path: (tmp_path / path).read_bytes() for path in before} == before
    assert temp_files(tmp_path / "data") == []

    again = _build(tmp_path, source)  # room again: the same command completes
    assert again.returncode == 0, again.stderr[-3000:]
    with tarfile.open(tmp_path / layout.tar("0042")) as archive:
        assert archive.getnames() == ["42.caption", "1042.caption", "2042.caption"]
        assert archive.extractfile("2042.caption").read() == CAPTION.encode()
