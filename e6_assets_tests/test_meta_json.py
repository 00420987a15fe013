import json
import random
import tarfile

import pyarrow as pa

from e6_assets.core.meta_json import caption_entries, merge_fragments, write_fragment, write_tar_gz


def _fragments(tmp_path, shards: int = 9, id_range: int = 4000):
    rng = random.Random(5)
    everything, paths = {}, []
    for shard in range(shards):
        ids = sorted({rng.randrange(0, id_range) * shards + shard for _ in range(60)})
        captions = [
            rng.choice(["", 'quote " and \\ backslash', "é 日本 ✨", "plain", "tab\there"]) for _ in ids
        ]
        everything.update({post_id: caption for post_id, caption in zip(ids, captions, strict=True)})
        path = tmp_path / f"{shard:04d}.arrow"
        write_fragment(path, caption_entries(pa.array(ids, pa.int64()), pa.array(captions, pa.string())))
        paths.append(path)
    return everything, paths


def test_merged_json_is_byte_identical_to_json_dumps_indent_2(tmp_path):
    everything, paths = _fragments(tmp_path)
    count = merge_fragments(paths, tmp_path / "meta_cap.json")
    expected = json.dumps({str(k): {"caption": everything[k]} for k in sorted(everything)}, indent=2)
    assert count == len(everything)
    assert (tmp_path / "meta_cap.json").read_text() == expected


def test_keys_ascend_by_numeric_id_not_by_string(tmp_path):
    write_fragment(tmp_path / "a.arrow", caption_entries(pa.array([2, 10], pa.int64()), pa.array(["b", "c"])))
    write_fragment(tmp_path / "b.arrow", caption_entries(pa.array([9, 100], pa.int64()), pa.array(["", "d"])))
    merge_fragments([tmp_path / "a.arrow", tmp_path / "b.arrow"], tmp_path / "m.json")
    assert list(json.loads((tmp_path / "m.json").read_text())) == ["2", "9", "10", "100"]


def test_no_entries_give_an_empty_object(tmp_path):
    write_fragment(tmp_path / "e.arrow", caption_entries(pa.array([], pa.int64()), pa.array([], pa.string())))
    merge_fragments([tmp_path / "e.arrow"], tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {}


def test_tar_gz_holds_the_json_and_is_reproducible(tmp_path):
    _, paths = _fragments(tmp_path)
    merged = tmp_path / "meta_cap.json"
    merge_fragments(paths, merged)
    first, second = tmp_path / "1" / "meta_cap.tar.gz", tmp_path / "2" / "meta_cap.tar.gz"
    write_tar_gz(merged, first)
    write_tar_gz(merged, second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first, "r:gz") as archive:
        assert archive.getnames() == ["meta_cap.json"]
        assert archive.extractfile("meta_cap.json").read() == merged.read_bytes()


def test_bands_written_by_worker_processes_give_the_same_file_and_its_archive(tmp_path):
    # Ids up to ~1.2M: five bands of 2**18 ids, written by two processes, archived as they complete.
    everything, paths = _fragments(tmp_path, shards=7, id_range=170_000)
    one, two = tmp_path / "one" / "meta_cap.json", tmp_path / "two" / "meta_cap.json"
    assert merge_fragments(paths, one) == len(everything)
    assert merge_fragments(paths, two, workers=2, archive=tmp_path / "two" / "meta_cap.tar.gz") == len(
        everything
    )
    assert two.read_bytes() == one.read_bytes()
    assert list(json.loads(one.read_text())) == [str(k) for k in sorted(everything)]
    write_tar_gz(one, tmp_path / "one" / "meta_cap.tar.gz")
    assert (tmp_path / "two" / "meta_cap.tar.gz").read_bytes() == (
        tmp_path / "one" / "meta_cap.tar.gz"
    ).read_bytes()


def test_no_entries_give_an_empty_object_and_its_archive(tmp_path):
    write_fragment(tmp_path / "e.arrow", caption_entries(pa.array([], pa.int64()), pa.array([], pa.string())))
    merge_fragments([tmp_path / "e.arrow"], tmp_path / "m" / "meta_cap.json", archive=tmp_path / "m.tar.gz")
    with tarfile.open(tmp_path / "m.tar.gz", "r:gz") as archive:
        assert archive.extractfile("meta_cap.json").read() == b"{}"
