"""Run the dataset card author's own scripts on a source folder, as the baseline this build is measured
against, and print each script's wall time and peak memory.

The scripts are not part of this repository. Pass the path of a local checkout of the public repository
``6DammK9/nai-anime-pure-negative-prompt``; the runner copies these three files out of it into a work
folder, applies the patches below and nothing else, and runs them in the order the author did:

- ``ch06/cheesechaser-runtime/e621-captions/dump_captions_json.py``: reads every month with
  ``pandas.read_json(lines=True)`` on 9 threads (a year per task, sharing the GIL), keeps every caption in
  one dict and writes ``meta_cap.json`` (``json.dumps(indent=2)`` in one string) to its working folder;
- ``ch06/cheesechaser-runtime/e621-captions/dump_captions_tar.py``: reads every month again the same way
  into a list indexed by post id (6,000,001 slots, fixed in the script), then writes the 1000 tars
  ``NNNN.tar`` on 9 threads;
- ``ch06/tipo-toriigate-runtime/merge_tag_and_caption_to_meta.py``: loads ``meta_lat.json`` three times
  (ids, tags, latents) and ``meta_cap.json`` with ``json.load``, merges them per id and writes
  ``meta_lat_v2.json`` and ``missing.json``.

Patches, each a literal replacement that must match exactly as many times as stated (the runner stops
if the upstream file changed):

1. input folder: ``LOCAL_DIR = "C:/temp/e621-captions"`` (once in each dump script) becomes the work
   folder's ``e621-captions/``;
2. tar folder: ``TAGS_FOLDER = "C:/temp/tags"`` (once, in ``dump_captions_tar.py``) becomes the work
   folder's ``tags/``;
3. merge files: ``"C:/temp/tags/`` (six times, the ``#Full dataest`` block of the merge script) becomes
   the merge run's folder, which holds ``meta_lat.json`` and ``meta_cap.json`` and receives
   ``meta_lat_v2.json`` and ``missing.json``;
4. the null crash: ``must_exist = [tag for tag in rearranged_tags if tag]`` (once in each dump script)
   becomes ``... if isinstance(tag, str) and tag]``. pandas reads a null or absent summary as ``None``
   or ``NaN``; ``NaN`` is truthy, so the original passes it to ``" ".join`` and dies with a TypeError.
   Skipping every non-string part keeps what the original keeps for every row it does not crash on.
5. only when the scripts run on Python older than 3.12: the merge script's last ``print`` nests double
   quotes inside an f-string (``{len(missing_id["tags"])}``), which is valid only since Python 3.12
   (PEP 701); those three subscripts are written with single quotes. Nothing else changes.

``dump_captions_json.py`` writes ``meta_cap.json`` to its working directory, which is the work folder.

What the runner lays out, without touching the scripts:

- ``e621-captions/``: a link to every ``YYYY-MM_grouped.jsonl`` of the source, and an empty file for every
  month from 2007-02 to 2024-12 the source lacks. The scripts open every month by name, and pandas reads
  a path that does not exist as literal JSON ("Expected object or value"); the real dataset has all 215
  months, the synthetic sample leaves one out on purpose.
- ``meta_lat.json``, the id universe the merge needs: the synthetic universe of the sample
  (``e6_assets.core.sample.write_sample_universe``, the one ``E6_ID_UNIVERSE=sample:ROWS`` uses), which has
  posts without tags or ``train_resolution``; or the file given with ``--universe``. The merge takes
  both keys as given: it raises KeyError at the first entry without ``tags`` (falling back to the tags of
  a post without a caption, or reading them from an entry that has other keys) or without
  ``train_resolution``. That crash is recorded as a result, not patched. The merge is then run a second
  time on the same universe less the entries without either key (the shape of the author's own file,
  whose log reads ``missing tags: 0 ... missing latent: 0``), to time a merge that finishes.

The scripts need pandas and tqdm, which are not dependencies of this project: give them a virtual
environment of their own, for example::

    python3 -m venv author-venv && author-venv/bin/pip install "pandas==2.2.3" tqdm

(pandas 2.2.3 was current when the scripts were written, in February 2025.) Then::

    python benchmarks/author_scripts.py CHECKOUT SOURCE_DIR WORK_DIR --universe-rows 430000 \\
        --python author-venv/bin/python

``--universe-rows`` (and ``--seed``) must be those the source was generated with (``e6-assets sample
--rows``). Each script runs as its own process, working directory the work folder, output in
``WORK_DIR/logs/``; wall clock from start to exit and peak RSS from ``wait4``, as ``/usr/bin/time -v``
reports them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

CAPTION_SCRIPTS = "ch06/cheesechaser-runtime/e621-captions"
MERGE_SCRIPT = "ch06/tipo-toriigate-runtime/merge_tag_and_caption_to_meta.py"
NULL_CRASH = "must_exist = [tag for tag in rearranged_tags if tag]"
NULL_SAFE = "must_exist = [tag for tag in rearranged_tags if isinstance(tag, str) and tag]"
SUMMARY_LINES = ("Captions found", "Tags found", "Files written", "ids:")


@dataclass
class ScriptRun:
    script: str
    wall_s: float
    peak_rss_mb: float
    exit_code: int
    printed: str = ""  # the script's own summary lines ("Captions found: ...", "ids: ...")
    error: str = ""  # where it failed and the exception, when it did


def patched(source: str, replacements: list[tuple[str, str, int]]) -> str:
    """``source`` with each ``(old, new, count)`` applied; ``old`` must occur exactly ``count`` times."""
    for old, new, count in replacements:
        if source.count(old) != count:
            raise SystemExit(
                f"patch not applicable: {old!r} occurs {source.count(old)} times, expected {count}"
            )
        source = source.replace(old, new)
    return source


def months_expected() -> list[str]:
    """The months the dump scripts open by name: 2007-02 through 2024-12."""
    return [f"{year}-{month:02d}" for year in range(2007, 2025) for month in range(1, 13)][1:]


def lay_out_input(source: Path, folder: Path) -> list[str]:
    """Link the source's month files into ``folder``; an empty file for each month it lacks (returned)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    absent = []
    for month in months_expected():
        name = f"{month}_grouped.jsonl"
        if (source / name).exists():
            (folder / name).symlink_to((source / name).resolve())
        else:
            (folder / name).touch()
            absent.append(month)
    return absent


def python_version(python: str) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True)
    major, minor = out.stdout.split()
    return int(major), int(minor)


def copy_patched(checkout: Path, work: Path, merge_dirs: list[Path], python: str) -> None:
    """The three scripts, patched as the module docstring lists, into ``work`` (one merge per folder)."""
    inputs = (work / "e621-captions").as_posix()
    local_dir = ('LOCAL_DIR = "C:/temp/e621-captions"', f'LOCAL_DIR = "{inputs}"', 1)
    for name, extra in (
        ("dump_captions_json.py", []),
        (
            "dump_captions_tar.py",
            [('TAGS_FOLDER = "C:/temp/tags"', f'TAGS_FOLDER = "{(work / "tags").as_posix()}"', 1)],
        ),
    ):
        text = (checkout / CAPTION_SCRIPTS / name).read_text(encoding="utf-8")
        (work / name).write_text(
            patched(text, [local_dir, *extra, (NULL_CRASH, NULL_SAFE, 1)]), encoding="utf-8"
        )
    merge = (checkout / MERGE_SCRIPT).read_text(encoding="utf-8")
    pre_312 = []
    if python_version(python) < (3, 12):
        pre_312 = [
            (f'missing_id["{key}"])}}', f"missing_id['{key}'])}}", 1) for key in ("tags", "caption", "latent")
        ]
    for folder in merge_dirs:
        text = patched(merge, [('"C:/temp/tags/', f'"{folder.as_posix()}/', 6), *pre_312])
        (folder / "merge_tag_and_caption_to_meta.py").write_text(text, encoding="utf-8")


def run(label: str, script: Path, cwd: Path, logs: Path, python: str) -> ScriptRun:
    """Run one script to completion: wall time, peak RSS of its process, and its error if it failed."""
    log = logs / (label.replace(", ", "-").replace(" ", "_") + ".log")
    with open(log, "w") as handle:
        started = time.perf_counter()
        process = subprocess.Popen([python, str(script)], cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    printed = "; ".join(line for line in lines if line.startswith(SUMMARY_LINES))
    error = ""
    if code != 0:
        where = [line.split(", in ")[0] for line in lines if line.startswith("File ")]
        error = f"{where[-1].split(', ')[-1]}: {lines[-1]}" if where else (lines[-1] if lines else "")
    result = ScriptRun(label, wall, usage.ru_maxrss / 1024, code, printed, error)
    state = f"FAILED at {error}" if code else printed
    print(f"  {label:<50} {wall:8.1f} s  {result.peak_rss_mb:8.0f} MB peak  {state}", flush=True)
    return result


def complete_entries(universe: Path, out: Path) -> int:
    """Copy of ``universe`` with only the entries that have both ``tags`` and ``train_resolution``."""
    entries = json.loads(universe.read_bytes())
    kept = {key: entry for key, entry in entries.items() if "tags" in entry and "train_resolution" in entry}
    out.write_text(json.dumps(kept, indent=2))
    return len(entries) - len(kept)


def run_author_scripts(
    checkout: Path,
    source: Path,
    work: Path,
    python: str,
    universe_rows: int | None = None,
    seed: int | None = None,
    universe: Path | None = None,
) -> dict:
    """Lay out the inputs, run the three scripts in order, and return what each took."""
    work = work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True)
    absent = lay_out_input(source.resolve(), work / "e621-captions")
    if absent:
        print(f"  empty stand-ins for months the source lacks: {', '.join(absent)}")
    merge_dirs = [work / "merge", work / "merge-complete"]
    for folder in merge_dirs:
        folder.mkdir()
        (folder / "meta_cap.json").symlink_to(work / "meta_cap.json")
    if universe is not None:
        shutil.copyfile(universe, merge_dirs[0] / "meta_lat.json")
    else:
        from e6_assets.core.sample import DEFAULT_SEED, write_sample_universe

        if universe_rows is None:
            raise SystemExit("give --universe-rows (the rows the source was generated with) or --universe")
        write_sample_universe(merge_dirs[0] / "meta_lat.json", universe_rows, seed or DEFAULT_SEED)
    dropped = complete_entries(merge_dirs[0] / "meta_lat.json", merge_dirs[1] / "meta_lat.json")
    copy_patched(checkout, work, merge_dirs, python)

    runs = [
        run(name, work / name, work, logs, python)
        for name in ("dump_captions_json.py", "dump_captions_tar.py")
    ]
    if runs[0].exit_code == 0:
        merge = "merge_tag_and_caption_to_meta.py"
        runs.append(run(f"{merge}, sample universe", merge_dirs[0] / merge, work, logs, python))
        print(f"  again on the universe less the {dropped} entries without tags or train_resolution:")
        runs.append(run(f"{merge}, complete entries", merge_dirs[1] / merge, work, logs, python))
    tars = sorted((work / "tags").glob("*.tar"))
    outputs = {
        "meta_cap_json_bytes": _size(work / "meta_cap.json"),
        "tars": len(tars),
        "tar_bytes": sum(path.stat().st_size for path in tars),
        "meta_lat_v2_json_bytes": _size(merge_dirs[0] / "meta_lat_v2.json"),
        "meta_lat_v2_json_bytes_complete_universe": _size(merge_dirs[1] / "meta_lat_v2.json"),
    }
    captions = runs[:2]
    captions_total = sum(step.wall_s for step in captions)
    captions_peak = max(step.peak_rss_mb for step in captions)
    label = "the two caption scripts (what this build does)"
    print(f"  {label:<50} {captions_total:8.1f} s  {captions_peak:8.0f} MB peak")
    return {
        "scripts": [asdict(step) for step in runs],
        "captions_total_s": captions_total,
        "captions_peak_rss_mb": captions_peak,
        "captions_succeeded": all(step.exit_code == 0 for step in captions),
        "months_stood_in_for": absent,
        "universe_entries_dropped_for_complete_run": dropped,
        "outputs": outputs,
    }


def compare_outputs(work: Path, data_dir: Path) -> dict:
    """How the scripts' tars and ``meta_cap.json`` differ from this build's under ``data_dir``.

    The scripts resolve an id that appears in several years by whichever year's thread wrote last, so
    the captions of such ids (and the tars that hold them) can differ from run to run and from this
    build's, where the later month wins.
    """
    theirs = sorted((work / "tags").glob("*.tar"))
    tars = sum(path.read_bytes() != (data_dir / "captions" / path.name).read_bytes() for path in theirs)
    their_meta = json.loads((work / "meta_cap.json").read_bytes())
    our_meta = json.loads((data_dir / "meta_cap.json").read_bytes())
    captions = sum(their_meta[key] != our_meta.get(key) for key in their_meta)
    print(
        f"  against this build: {tars}/{len(theirs)} tars, {captions:,}/{len(their_meta):,} captions differ"
    )
    return {
        "tars_differing": tars,
        "captions_differing": captions,
        "ids": len(their_meta),
        "ids_ours": len(our_meta),
    }


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkout", type=Path, help="a checkout of 6DammK9/nai-anime-pure-negative-prompt")
    parser.add_argument("source", type=Path, help="a folder of YYYY-MM_grouped.jsonl files")
    parser.add_argument("work", type=Path, help="where the scripts run and write (emptied first)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter with pandas and tqdm")
    parser.add_argument("--universe-rows", type=int, help="rows the sample source was generated with")
    parser.add_argument("--seed", type=int, help="seed the sample source was generated with (default 621)")
    parser.add_argument(
        "--universe", type=Path, help="a meta_lat.json to merge into, instead of the sample's"
    )
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    print(f"the author's scripts on {args.source}:")
    results = run_author_scripts(
        args.checkout, args.source, args.work, args.python, args.universe_rows, args.seed, args.universe
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
