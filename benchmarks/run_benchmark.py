"""Benchmark the build on a synthetic source of a given size.

Generates a source with the sample generator (``--rows``; full scale is 4,300,000), runs each step of
the build as its own process and prints per-stage wall time, rows per second and peak resident memory;
then the same build through Dagster on a SQLite instance (``e6-assets build``), a rerun of one shard
after a change to it, and the card's approach (``card_baseline.py``) on a smaller source, with the ratio.
With ``--author-repo``, also the card author's own scripts (``author_scripts.py``, which says how to
give them an interpreter with ``--author-python``) on a source of ``--author-rows``, against this build.
With ``--postgres URL``, the build through Dagster also on a PostgreSQL instance.

    python benchmarks/run_benchmark.py --rows 4300000 --work /tmp/e6-bench --baseline-rows 430000

Figures are whole-process: wall clock from start to exit, and the largest peak RSS (``VmHWM``) of any
process of the command's tree, sampled every 0.2 s. Not ``wait4``'s ``ru_maxrss`` (what
``/usr/bin/time -v`` reports): Linux starts a child's figure at its parent's resident size when it
forks, so it reports this script's own memory for a command that uses less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
STEPS = ["stage", "raw", "rearrange", "tars", "merge"]
RERUN_SHARD = "0042"


@dataclass
class Measure:
    name: str
    wall_s: float
    peak_rss_mb: float
    rows: int | None = None

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.wall_s if self.rows and self.wall_s else None


LOG = Path("benchmark.log")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _peak_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


class TreePeakRss(threading.Thread):
    """The largest peak RSS (VmHWM) of any process in a process tree: the command and the worker
    processes it starts (which ``wait4``'s figure, the command's own, leaves out). Sampled every
    0.2 s, so a worker that lives less than that may be missed."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak_kb, self.done = root, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for pid in _descendants(self.root):
                self.peak_kb = max(self.peak_kb, _peak_rss_kb(pid))


def measure(name: str, command: list[str], rows: int | None = None, env: dict | None = None) -> Measure:
    """Run ``command`` to completion; its wall time and the peak RSS of the largest of its processes."""
    with open(LOG, "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        started = time.perf_counter()
        process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
        sampler = TreePeakRss(process.pid)
        sampler.start()
        _, status, _ = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed (see {LOG}): {' '.join(command)}")
    result = Measure(name, wall, sampler.peak_kb / 1024, rows)
    rate = f", {result.rows_per_s:,.0f} rows/s" if result.rows_per_s else ""
    print(f"  {name:<28} {wall:8.1f} s  {result.peak_rss_mb:8.0f} MB peak{rate}", flush=True)
    return result


def ensure_source(work: Path, rows: int) -> Path:
    folder = work / f"source-{rows}"
    if not (folder / ".complete").exists():
        print(f"generating a synthetic source of {rows:,} rows in {folder} ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        measure(
            "generate (not part of the build)",
            [sys.executable, "-m", "e6_assets.cli", "sample", "--out", str(folder), "--rows", str(rows)],
        )
        (folder / ".complete").touch()
    return folder


def pipeline_steps(source: Path, data: Path, rows: int) -> list[Measure]:
    shutil.rmtree(data, ignore_errors=True)
    return [
        measure(step, [sys.executable, str(HERE / "stage.py"), step, str(source), str(data)], rows)
        for step in STEPS
    ]


def merged_md5(data: Path) -> dict[str, str]:
    """MD5 of the merged files of a build (to compare builds; not part of any timing)."""
    digests = {}
    for name in ("meta_cap.json", "meta_cap.tar.gz"):
        digest = hashlib.md5()
        with open(data / name, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
        digests[name] = digest.hexdigest()
    return digests


def change_one_shard(source: Path, shard: str) -> None:
    """Append a corrected row for a post of ``shard`` to the newest month, as an upstream fix would."""
    newest = sorted(source.glob("*_grouped.jsonl"))[-1]
    post_id = 1000 * 7 + int(shard)
    row = {
        "id": post_id,
        "tags": "fox",
        "response_finish_reason": "STOP",
        "regular_summary": "A corrected caption.",
    }
    with open(newest, "a", encoding="utf-8") as handle:
        handle.write("\n" + json.dumps(row))


def dagster_build(source: Path, data: Path, home: Path, shards: str, name: str, rows: int | None) -> Measure:
    """``e6-assets build`` on the instance in ``home``, with the project's dagster.yaml as the README
    sets it up (copied in when the home is new)."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(HERE.parent / "dagster.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), "E6_SOURCE": str(source), "E6_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "e6_assets.cli", "build", "--shards", shards]
    return measure(name, command, rows, env)


def author_baseline(work: Path, checkout: Path, rows: int, python: str) -> dict:
    """The card author's own scripts (``author_scripts.py``) and this build's steps on one source."""
    from author_scripts import compare_outputs, run_author_scripts  # beside this file

    source = ensure_source(work, rows)
    print(f"\nthe author's scripts against this build, {rows:,} rows:")
    theirs = run_author_scripts(checkout, source, work / "author-scripts", python, universe_rows=rows)
    ours = pipeline_steps(source, work / "author-ours", rows)
    ours_total = sum(step.wall_s for step in ours)
    ours_peak = max(step.peak_rss_mb for step in ours)
    ratio = theirs["captions_total_s"] / ours_total
    print(
        f"  this build: {ours_total:.1f} s, {ours_peak:.0f} MB peak; the author's two caption scripts take "
        f"{ratio:.1f}x as long, {theirs['captions_peak_rss_mb'] / ours_peak:.1f}x the memory"
    )
    differences = compare_outputs(work / "author-scripts", work / "author-ours")
    for folder in ("author-dagster-data", "author-dagster-home"):
        shutil.rmtree(work / folder, ignore_errors=True)
    build = dagster_build(
        source,
        work / "author-dagster-data",
        work / "author-dagster-home",
        "0000...0999",
        "e6-assets build",
        rows,
    )
    print(
        f"  e6-assets build, end to end: the author's caption scripts take "
        f"{theirs['captions_total_s'] / build.wall_s:.1f}x as long"
    )
    return {
        **theirs,
        "ours_s": ours_total,
        "ours_peak_rss_mb": ours_peak,
        "ratio": ratio,
        "e6_assets_build": asdict(build),
        **differences,
    }


def postgres_build(source: Path, work: Path, server_url: str, rows: int) -> Measure:
    """The full build through Dagster on a PostgreSQL instance, as the README sets one up:
    deploy/postgres/dagster.yaml on a new database ``e6_bench`` of the server at ``server_url`` (a
    user that may create databases, e.g. ``postgresql://user:pw@127.0.0.1:5432/postgres``), with
    events stored in batches and one planned event per asset of the ranged run."""
    import psycopg2  # the postgres extra: pip install -e '.[postgres]'

    url = urlsplit(server_url)
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS e6_bench WITH (FORCE)")
        cursor.execute("CREATE DATABASE e6_bench")
    admin.close()
    home, data = work / "postgres-home", work / "postgres-data"
    for folder in (home, data):
        shutil.rmtree(folder, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copyfile(HERE.parent / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "E6_SOURCE": str(source),
        "E6_DATA_DIR": str(data),
        "DAGSTER_PG_HOST": url.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USERNAME": url.username or "",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": "e6_bench",
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    }
    command = [sys.executable, "-m", "e6_assets.cli", "build", "--shards", "0000...0999"]
    return measure("e6-assets build (PostgreSQL)", command, rows, env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=4_300_000)
    parser.add_argument(
        "--baseline-rows", type=int, default=0, help="also run the card's approach at this size"
    )
    parser.add_argument("--work", type=Path, default=Path("bench-work"))
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument(
        "--author-repo", type=Path, help="a checkout of the card author's repository: run their scripts too"
    )
    parser.add_argument("--author-rows", type=int, default=430_000, help="source size for their scripts")
    parser.add_argument("--author-python", default=sys.executable, help="interpreter with pandas and tqdm")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also build through Dagster on a PostgreSQL instance on this server (see postgres_build)",
    )
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    global LOG
    LOG = work / "benchmark.log"
    results: dict = {
        "rows": args.rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }

    source = ensure_source(work, args.rows)
    results["source_bytes"] = sum(path.stat().st_size for path in source.glob("*.jsonl"))
    print(f"\nbuild steps, {args.rows:,} rows, {results['source_bytes'] / 1e9:.2f} GB of JSONL:")
    steps = pipeline_steps(source, work / "data", args.rows)
    total = sum(step.wall_s for step in steps)
    print(f"  {'total (data work)':<28} {total:8.1f} s  {max(s.peak_rss_mb for s in steps):8.0f} MB peak")
    results["steps"] = [asdict(step) for step in steps]
    results["merged_md5"] = merged_md5(work / "data")
    print(f"  merged files: {results['merged_md5']}")
    results["pipeline_total_s"] = total

    if not args.skip_dagster:
        print("\nthrough Dagster (e6-assets build, SQLite instance, all 1000 shards + merged files):")
        shutil.rmtree(work / "dagster-data", ignore_errors=True)
        shutil.rmtree(work / "dagster-home", ignore_errors=True)
        full = dagster_build(
            source, work / "dagster-data", work / "dagster-home", "0000...0999", "e6-assets build", args.rows
        )
        print(f"  Dagster's share: {full.wall_s - total:.1f} s of {full.wall_s:.1f} s")
        same = merged_md5(work / "dagster-data") == results["merged_md5"]
        print(f"  merged files {'identical to' if same else 'DIFFERENT from'} the step-by-step build's")
        results["dagster"] = {**asdict(full), "dagster_share_s": full.wall_s - total}
        if args.postgres:
            print("\nthrough Dagster on PostgreSQL (deploy/postgres/dagster.yaml, events in batches):")
            on_postgres = postgres_build(source, work, args.postgres, args.rows)
            print(f"  Dagster's share: {on_postgres.wall_s - total:.1f} s of {on_postgres.wall_s:.1f} s")
            shutil.rmtree(work / "postgres-data")  # its outputs are the SQLite build's: room on disk
            results["dagster_postgres"] = {
                **asdict(on_postgres),
                "dagster_share_s": on_postgres.wall_s - total,
            }

    print(f"\nrerun of shard {RERUN_SHARD} after a change to it in the newest month file:")
    # The builds above are rebuilt in place (a copy of each would be another ~17 GB at full scale), from
    # a source of hard links to the same files but for the changed month, which is copied.
    rerun_source = work / "rerun-source"
    shutil.rmtree(rerun_source, ignore_errors=True)
    shutil.copytree(source, rerun_source, copy_function=os.link)
    newest = sorted(rerun_source.glob("*_grouped.jsonl"))[-1]
    newest.unlink()
    shutil.copy2(source / newest.name, newest)  # keeps the mtime: the other staged months stay current
    change_one_shard(rerun_source, RERUN_SHARD)
    step = [sys.executable, str(HERE / "stage.py")]
    rerun = measure(
        f"shard {RERUN_SHARD}, every step",
        [*step, "shard", str(rerun_source), str(work / "data"), RERUN_SHARD],
    )
    merge = measure("merged files after it", [*step, "merge", str(rerun_source), str(work / "data")])
    results["rerun"] = {"shard": asdict(rerun), "merge": asdict(merge)}
    if not args.skip_dagster:
        env = {
            "DAGSTER_HOME": str(work / "dagster-home"),
            "E6_SOURCE": str(rerun_source),
            "E6_DATA_DIR": str(work / "dagster-data"),
        }
        # As a user types it: the merged files follow by default.
        command = [sys.executable, "-m", "e6_assets.cli", "build", "--shards", RERUN_SHARD]
        results["rerun"]["dagster"] = asdict(
            measure(f"e6-assets build --shards {RERUN_SHARD}", command, env=env)
        )

    if args.baseline_rows:
        print(f"\nthe card's approach against this build, {args.baseline_rows:,} rows:")
        small = ensure_source(work, args.baseline_rows)
        shutil.rmtree(work / "baseline-out", ignore_errors=True)
        baseline = measure(
            "card approach",
            [sys.executable, str(HERE / "card_baseline.py"), str(small), str(work / "baseline-out")],
            args.baseline_rows,
        )
        ours = pipeline_steps(small, work / "baseline-ours", args.baseline_rows)
        ours_total = sum(step.wall_s for step in ours)
        ratio = baseline.wall_s / ours_total
        print(
            f"  this build: {ours_total:.1f} s, {max(s.peak_rss_mb for s in ours):.0f} MB peak; "
            f"the card's approach takes {ratio:.1f}x as long"
        )
        results["baseline"] = {
            "card": asdict(baseline),
            "ours_s": ours_total,
            "ours_peak_rss_mb": max(s.peak_rss_mb for s in ours),
            "ratio": ratio,
        }

    if args.author_repo:
        results["author_scripts"] = author_baseline(
            work, args.author_repo, args.author_rows, args.author_python
        )

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
