import pytest

from e6_assets.core.sources import SourceNotFound, parse_hf_url, resolve_hub, resolve_local
from e6_assets.defs.resources import CaptionSource
from e6_assets_tests.hub_cache import lay_out_dataset

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_hf_url_parts():
    plain = parse_hf_url("hf://datasets/lodestones/e621-captions")
    assert (plain.repo_id, plain.path, plain.revision) == ("lodestones/e621-captions", None, "main")
    pinned = parse_hf_url(f"hf://datasets/owner/repo/sub/meta_lat.json@{COMMIT}")
    assert (pinned.repo_id, pinned.path, pinned.revision) == ("owner/repo", "sub/meta_lat.json", COMMIT)
    with pytest.raises(SourceNotFound, match="not a Hub dataset address"):
        parse_hf_url("hf://models/x/y")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SourceNotFound, match="does not exist"):
        resolve_local(tmp_path / "nope")


def test_folder_without_monthly_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceNotFound, match=r"no YYYY-MM_grouped\.jsonl files"):
        resolve_local(tmp_path)


def test_local_folder_lists_monthly_files_in_name_order(sample_dir):
    files = resolve_local(sample_dir).files
    assert files == sorted(files) and files[0].name == "2007-02_grouped.jsonl"


def _hub_files(sample_dir) -> dict[str, bytes]:
    files = {path.name: path.read_bytes() for path in sorted(sample_dir.iterdir())[:12]}
    files["README.md"] = b"not a month"
    return files


def test_hub_source_resolves_from_the_cache_and_records_the_commit(tmp_path, sample_dir):
    cache = tmp_path / "hub"
    lay_out_dataset(cache, "lodestones/e621-captions", _hub_files(sample_dir), COMMIT)
    resolved = resolve_hub("hf://datasets/lodestones/e621-captions@main", cache_dir=str(cache))
    assert resolved.revision == COMMIT
    assert resolved.metadata["hub_commit"] == COMMIT
    assert [path.name for path in resolved.files] == sorted(p.name for p in sample_dir.iterdir())[:12]
    assert resolved.files[3].read_bytes() == sorted(sample_dir.iterdir())[3].read_bytes()
    assert not resolved.synthetic


def test_hub_source_by_commit_and_through_the_resource(tmp_path, sample_dir):
    cache = tmp_path / "hub"
    lay_out_dataset(cache, "lodestones/e621-captions", _hub_files(sample_dir), COMMIT)
    source = CaptionSource(spec=f"hf://datasets/lodestones/e621-captions@{COMMIT}", hub_cache_dir=str(cache))
    assert source.resolve(tmp_path / "data").revision == COMMIT


def test_hub_snapshot_missing_a_listed_file_is_refused(tmp_path, sample_dir):
    cache = tmp_path / "hub"
    snapshot = lay_out_dataset(cache, "lodestones/e621-captions", _hub_files(sample_dir), COMMIT)
    (snapshot / "2007-05_grouped.jsonl").unlink()  # an interrupted download
    with pytest.raises(Exception, match="incomplete"):
        resolve_hub("hf://datasets/lodestones/e621-captions", cache_dir=str(cache))


def test_sample_source_is_labelled_synthetic(tmp_path):
    resolved = CaptionSource(spec="sample:200").resolve(tmp_path)
    assert resolved.synthetic and "SYNTHETIC" in resolved.description
    assert resolved.metadata == {"synthetic": True, "sample_rows": 200, "sample_seed": 621}
