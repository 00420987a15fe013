"""Reading and staging the id universe: accepted forms, bad input named by id, staging reuse."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from e6_assets.core.universe import UniverseError, iter_entries, stage_universe

GOOD = {"7": {"tags": "a", "train_resolution": [64, 128]}, "1007": {"tags": None}, "3": {}}


def _write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_entries_in_file_order_with_null_as_absent(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.json", GOOD)
    assert list(iter_entries(path)) == [(7, "a", 64, 128), (1007, None, None, None), (3, None, None, None)]


def test_tar_gz_holding_one_json_file_is_read(tmp_path: Path) -> None:
    path = _tar_gz(tmp_path / "meta_lat.tar.gz", {"meta_lat.json": json.dumps(GOOD).encode()})
    assert [entry[0] for entry in iter_entries(path)] == [7, 1007, 3]


def test_tar_gz_with_two_files_is_rejected(tmp_path: Path) -> None:
    path = _tar_gz(tmp_path / "two.tar.gz", {"a.json": b"{}", "b.json": b"{}"})
    with pytest.raises(UniverseError, match="more than one file"):
        list(iter_entries(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"1": {}}]', r"line 1: not a JSON object"),
        ("", "empty file"),
        ('{"5": "tags here"}', "id 5: entry is not a JSON object"),
        ('{"5": {"tags": ["a"]}}', "id 5: tags must be a string"),
        ('{"5": {"tags": 3}}', "id 5: tags must be a string"),
        ('{"6": {"train_resolution": [0, 64]}}', "id 6: train_resolution must be two positive integers"),
        ('{"6": {"train_resolution": [64, 64, 3]}}', "id 6: train_resolution"),
        ('{"6": {"train_resolution": [64.0, 64]}}', "id 6: train_resolution"),
        ('{"6": {"train_resolution": [true, 64]}}', "id 6: train_resolution"),
        ('{"6": {"train_resolution": "64x64"}}', "id 6: train_resolution"),
        ('{"x7": {}}', "key 'x7' is not a post id"),
        ('{"07": {}}', "key '07' is not a post id"),
        ('{"1": {}, "2": {"tags": "a"', r"not valid JSON \(after id 1\)"),
        ('{"1": {}} {"2": {}}', r"not valid JSON \(after id 1\)"),
    ],
)
def test_bad_input_names_the_file_and_id(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path / "bad.json", content)
    with pytest.raises(UniverseError, match=message) as error:
        list(iter_entries(path))
    assert str(path) in str(error.value)


def test_bad_entry_leaves_nothing_staged(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.json", '{"1": {}, "2": {"train_resolution": [1]}}')
    with pytest.raises(UniverseError, match="id 2"):
        stage_universe(path, tmp_path / "stage")
    assert list((tmp_path / "stage").iterdir()) == []


def test_staged_copy_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.json", GOOD)
    first = stage_universe(path, tmp_path / "stage")
    again = stage_universe(path, tmp_path / "stage")
    assert (first.parsed, again.parsed) == (True, False)
    assert first.staged.folder == again.staged.folder and first.staged.entries == 3

    _write(path, {"8": {"tags": "b"}})
    changed = stage_universe(path, tmp_path / "stage")
    assert changed.parsed and changed.staged.sha256 != first.staged.sha256
    assert [p.name for p in (tmp_path / "stage").iterdir()] == [changed.staged.folder.name]


def test_shards_are_ascending_by_id_and_a_repeated_key_keeps_the_later_entry(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.json", '{"2007": {"tags": "old"}, "7": {}, "2007": {"tags": "new"}}')
    staged = stage_universe(path, tmp_path / "stage").staged
    shards = {shard: table.to_pylist() for shard, table in staged.iter_shard_tables([7, 8, 950])}
    assert [row["id"] for row in shards[7]] == [7, 2007]
    assert shards[7][1]["tags"] == "new"
    assert shards[8] == [] and shards[950] == []
