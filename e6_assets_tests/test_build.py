"""The whole graph on the sample: through the plain pipeline, through Dagster, and with bad input."""

import io
import json
import shutil
import tarfile

import dagster as dg
from hfutils.index import tar_get_index_info

from e6_assets.core import pipeline
from e6_assets.core.layout import DataLayout
from e6_assets.core.shards import SHARD_KEYS, shard_key
from e6_assets.core.sources import resolve_local
from e6_assets.definitions import resources
from e6_assets.defs.assets import ALL_ASSETS, MERGED_ASSETS, PER_SHARD_ASSETS
from e6_assets_tests.conftest import range_tags
from e6_assets_tests.reference import card_caption, card_meta_cap, latest_rows


def _reference_tar(rows: dict[int, dict], shard: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for post_id in sorted(rows):
            caption = card_caption(rows[post_id])
            if shard_key(post_id) == shard and caption:
                info = tarfile.TarInfo(f"{post_id}.caption")
                info.size = len(caption.encode())
                archive.addfile(info, io.BytesIO(caption.encode()))
    return buffer.getvalue()


def test_full_build_writes_all_1000_tars_with_indexes(full_build):
    assert all(full_build.tar(key).exists() and full_build.tar_index(key).exists() for key in SHARD_KEYS)


def test_every_tar_is_byte_identical_to_tarfile_on_the_card_rule(full_build, sample_dir):
    rows = latest_rows(sample_dir)
    for key in SHARD_KEYS:
        assert full_build.tar(key).read_bytes() == _reference_tar(rows, key), key


def test_meta_cap_json_loads_to_what_the_card_script_produces(full_build, sample_dir):
    assert json.loads(full_build.meta_cap_json.read_text()) == card_meta_cap(sample_dir)
    with tarfile.open(full_build.meta_cap_tar_gz, "r:gz") as archive:
        assert archive.extractfile("meta_cap.json").read() == full_build.meta_cap_json.read_bytes()


def test_tar_indexes_match_hfutils(full_build):
    for key in ("0000", "0421", "0999"):
        ours = json.loads(full_build.tar_index(key).read_bytes())
        assert ours == tar_get_index_info(str(full_build.tar(key)), silent=True)


def test_rebuild_is_byte_identical(full_build, sample_dir, tmp_path):
    again = DataLayout(tmp_path / "again")
    pipeline.build(resolve_local(sample_dir), again, keys=["0000", "0001", "0002"])
    for key in ("0000", "0001", "0002"):
        assert again.tar(key).read_bytes() == full_build.tar(key).read_bytes()
        assert again.tar_index(key).read_bytes() == full_build.tar_index(key).read_bytes()


def _latest(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return {name: value.value for name, value in records[0].asset_materialization.metadata.items()}


def test_ranged_run_records_numbers_and_checks_per_shard(e6_env, instance):
    result = dg.materialize(
        PER_SHARD_ASSETS, instance=instance, tags=range_tags("0010", "0014"), resources=resources()
    )
    assert result.success
    assert len(instance.get_run_records()) == 1  # five shards, one run
    layout = DataLayout(e6_env)
    for key in ("0010", "0012", "0014"):
        numbers = _latest(instance, "rearranged_captions", key)
        counts = pipeline.read_counts(layout, key)
        assert {k: numbers[k] for k in counts.as_dict()} == counts.as_dict()
        assert numbers["rows"] == counts.from_summary + counts.from_tags + counts.empty
        tar = _latest(instance, "caption_tars", key)
        assert tar["members"] == counts.rows - counts.empty
        assert tar["tar_bytes"] == layout.tar(key).stat().st_size

    checks = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    by_name = {}
    for check in checks:
        by_name.setdefault(check.check_name, []).append(check)
    assert sorted(c.partition for c in by_name["tar_matches_captions"]) == [
        "0010",
        "0011",
        "0012",
        "0013",
        "0014",
    ]
    assert all(c.passed for c in by_name["tar_matches_captions"])
    for check in by_name["caption_counts"]:
        assert check.passed == (check.metadata["empty"].value == 0)


def test_merged_asset_refuses_until_every_shard_is_built(e6_env, instance):
    result = dg.materialize(
        ALL_ASSETS, selection=MERGED_ASSETS, instance=instance, resources=resources(), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "1000 shards have no meta_cap fragment yet" in str(failure.step_failure_data.error.message)


def test_bad_line_fails_the_run_naming_file_and_line_and_keeps_built_shards(
    e6_env, instance, sample_dir, tmp_path, monkeypatch
):
    source = tmp_path / "source"
    shutil.copytree(sample_dir, source)
    monkeypatch.setenv("E6_SOURCE", str(source))
    assert dg.materialize(
        PER_SHARD_ASSETS, instance=instance, tags=range_tags("0000", "0003"), resources=resources()
    ).success
    layout = DataLayout(e6_env)
    before = {
        path: path.read_bytes()
        for path in layout.root.rglob("*")
        if path.is_file() and "staged" not in path.parts
    }

    bad = source / "2015-06_grouped.jsonl"
    lines = bad.read_bytes().split(b"\n")
    lines[4] = b'{"id": 12345, "tags": 7}'
    bad.write_bytes(b"\n".join(lines))
    result = dg.materialize(
        PER_SHARD_ASSETS,
        instance=instance,
        tags=range_tags("0000", "0003"),
        resources=resources(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert '2015-06_grouped.jsonl:5: id 12345: "tags" is neither a string nor null' in str(
        failure.step_failure_data.error.message
    )
    after = {
        path: path.read_bytes()
        for path in layout.root.rglob("*")
        if path.is_file() and "staged" not in path.parts
    }
    assert after == before  # nothing half-written, nothing lost
    assert not [path for path in layout.root.rglob("*.tmp")]
