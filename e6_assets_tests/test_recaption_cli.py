"""The recaption loop from the command line, as the README walks through it: export the work lists,
caption them elsewhere, drop the output into a folder, build with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from e6_assets.core.layout import DataLayout
from e6_assets.core.shards import SHARD_KEYS
from e6_assets_tests.cli_process import cli_env, instance_home
from e6_assets_tests.reference import card_caption, latest_rows


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "e6_assets.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_export_caption_elsewhere_drop_in_and_build(full_build: DataLayout, sample_dir: Path, tmp_path: Path):
    shutil.copytree(full_build.root, tmp_path / "data")
    layout = DataLayout(tmp_path / "data")
    env = cli_env(instance_home(tmp_path / "home"))
    settings = ["--source", str(sample_dir), "--data-dir", str(layout.root)]

    exported = _cli(["recaption-export", "--lists", "3", *settings], tmp_path, env)
    assert exported.returncode == 0, exported.stderr
    source = latest_rows(sample_dir)
    queued = {
        post_id
        for post_id, row in source.items()
        if not card_caption(row) or row.get("response_finish_reason") != "STOP"
    }
    lists = sorted(layout.recaption_lists_dir.glob("work-*-of-03.jsonl"))
    work = [[json.loads(line) for line in path.read_text().splitlines()] for path in lists]
    assert sorted(row["id"] for rows in work for row in rows) == sorted(queued)
    counts = ", ".join(str(len(rows)) for rows in work)
    assert f"queued for recaptioning: {len(queued)} posts; work lists (id % 3): {counts}" in exported.stdout

    # Three captioners, one per list, each writing its own JSONL into the overrides folder.
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    for index, rows in enumerate(work):
        lines = [
            json.dumps({"id": row["id"], "caption": f"Caption {row['id']}.", "model": "vlm"}) for row in rows
        ]
        (overrides / f"gpu-{index}.jsonl").write_text("\n".join(lines) + "\n")

    built = _cli(["build", "--caption-overrides", str(overrides), *settings], tmp_path, env)
    assert built.returncode == 0, built.stderr
    shards_with_overrides = len({post_id % 1000 for post_id in queued})
    assert f"caption overrides: {shards_with_overrides} shards have overrides" in built.stdout
    assert f"from tags: 0, empty: 0, duplicates dropped: 35, from overrides: {len(queued)}" in built.stdout
    meta_cap = json.loads(layout.meta_cap_json.read_bytes())
    for post_id, row in source.items():
        expected = f"Caption {post_id}." if post_id in queued else card_caption(row)
        assert meta_cap[str(post_id)] == {"caption": expected}

    again = _cli(["recaption-export", "--lists", "3", *settings], tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert "queued for recaptioning: 0 posts" in again.stdout
    assert sum(pq.read_metadata(layout.recaption_queue(key)).num_rows for key in SHARD_KEYS) == 0


def test_export_before_a_build_says_to_build_first(tmp_path: Path, sample_dir: Path):
    env = cli_env(instance_home(tmp_path / "home"))
    result = _cli(
        ["recaption-export", "--source", str(sample_dir), "--data-dir", str(tmp_path / "d")], tmp_path, env
    )
    assert result.returncode == 2
    assert "1000 shards are not built yet (first: 0000); run e6-assets build" in result.stderr


def test_a_bad_override_line_fails_the_build_naming_file_and_line(
    full_build: DataLayout, sample_dir: Path, tmp_path: Path
):
    shutil.copytree(full_build.root, tmp_path / "data")
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    (overrides / "out.jsonl").write_text(
        '{"id": 42, "caption": "fine", "model": "vlm"}\n{"id": 43, "caption": 7, "model": "vlm"}\n'
    )
    env = cli_env(instance_home(tmp_path / "home"))
    settings = ["--source", str(sample_dir), "--data-dir", str(tmp_path / "data"), "--shards", "0042"]
    result = _cli(["build", "--caption-overrides", str(overrides), *settings], tmp_path, env)
    assert result.returncode == 1
    assert 'out.jsonl:2: id 43: "caption" is neither a string nor null: 7' in result.stderr
    assert not (tmp_path / "data" / "overrides").exists()
