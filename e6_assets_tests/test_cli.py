"""``e6-assets build`` as a user runs it: a real process, a real instance on disk."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

from e6_assets_tests.cli_process import instance_home
from e6_assets_tests.hub_cache import lay_out_dataset

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("E6_", "DAGSTER_HOME"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "e6_assets.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_missing_source_folder_is_one_line_and_exit_2(tmp_path):
    result = _run(["build", "--source", str(tmp_path / "nowhere")], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"e6-assets: source folder {tmp_path / 'nowhere'} does not exist"
    ]


def test_source_without_monthly_files_is_one_line_and_exit_2(tmp_path):
    result = _run(["build", "--source", str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert "has no YYYY-MM_grouped.jsonl files" in result.stderr and len(result.stderr.splitlines()) == 1


def test_unknown_shard_is_one_line_and_exit_2(tmp_path, sample_dir):
    result = _run(["build", "--source", str(sample_dir), "--shards", "1234"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "e6-assets: unknown shard key '1234': expected four digits, 0000 to 0999"


TOKEN = "hf_e6AssetsTestTokenThatMustNeverBeStored"


def test_build_from_the_hub_cache_records_runs_in_the_instance_and_never_the_token(tmp_path, sample_dir):
    cache = tmp_path / "hub"
    files = {path.name: path.read_bytes() for path in sample_dir.iterdir()}
    lay_out_dataset(cache, "lodestones/e621-captions", files, COMMIT)
    home = tmp_path / "home"
    home.mkdir()
    result = _run(
        [
            "build",
            "--source",
            "hf://datasets/lodestones/e621-captions@main",
            "--shards",
            "0100...0104",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        tmp_path,
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(cache),
        DAGSTER_HOME=str(home),
        HF_TOKEN=TOKEN,
    )
    assert result.returncode == 0, result.stderr
    assert f"source: hf://datasets/lodestones/e621-captions@{COMMIT}" in result.stdout
    assert "shards: 5 (0100...0104), rows:" in result.stdout
    assert "merged files not rebuilt: 995 shards are not built yet (first: 0000)" in result.stdout
    assert sorted(p.name for p in (tmp_path / "data" / "captions").iterdir())[:2] == ["0100.json", "0100.tar"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_run_records()
        assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_captions"))
        assert event.asset_materialization.metadata["hub_commit"].value == COMMIT
    # The event log, run config, tags and metadata the UI shows all live in the instance's storage.
    stored = [path for root in (home, tmp_path / "data") for path in root.rglob("*") if path.is_file()]
    assert [path for path in stored if TOKEN.encode() in path.read_bytes()] == []
    assert TOKEN not in result.stdout + result.stderr


def test_failed_build_exits_non_zero_naming_the_bad_line(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "2020-01_grouped.jsonl").write_text('{"id": 1, "tags": "a"}\n{"id": "two"}\n')
    result = _run(
        ["build", "--source", str(source), "--shards", "0001", "--data-dir", str(tmp_path / "d")],
        tmp_path,
        DAGSTER_HOME=str(tmp_path),
    )
    assert result.returncode == 1
    assert "2020-01_grouped.jsonl:2: \"id\" is not an integer: 'two'" in result.stderr


def test_build_shows_one_line_per_step_and_the_summary_not_dagsters_log_lines(tmp_path):
    home = instance_home(tmp_path / "home")  # with the project's dagster.yaml, as e6-assets makes it
    result = _run(
        ["build", "--shards", "0000...0009", "--data-dir", str(tmp_path / "data")],
        tmp_path,
        DAGSTER_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr
    step_line = r"[\d,]+ rows, [\d,]+ rows/s \[\d+\.\d s\]"
    expected = [
        rf"staging the source: 214/214 files, {step_line}",
        rf"raw_captions: 10/10 shards, {step_line}",
        rf"rearranged_captions: 10/10 shards, {step_line}",
        rf"caption_tars: 10/10 shards, {step_line}",
    ]
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == len(expected), result.stderr
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), line
    assert result.stdout.splitlines()[0].startswith("source: SYNTHETIC sample")
    assert result.stdout.splitlines()[1].startswith("shards: 10 (0000...0009), rows:")
    assert " - dagster - " not in result.stdout + result.stderr
