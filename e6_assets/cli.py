"""``e6-assets``: build shards and the merged files through Dagster, recorded in the instance the UI reads."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from pathlib import Path

import dagster as dg

from e6_assets.shards import SHARD_KEYS, parse_shard_range
from e6_assets.sources import SourceNotFound

DEFAULT_HOME = ".dagster_home"
# What `e6-assets build` and `e6-assets ui` use for a variable that is not set (empty: not configured).
DEFAULTS = {"E6_SOURCE": "sample", "E6_DATA_DIR": "data", "E6_ID_UNIVERSE": "", "E6_MISSING_CAPTION_WARN": ""}


def instance_home() -> Path:
    """``DAGSTER_HOME`` if set, else ``./.dagster_home`` with this folder's ``dagster.yaml`` in it.

    ``e6-assets ui`` uses the same home, so the UI shows every build made from the command line.
    """
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).resolve()
    home = Path(DEFAULT_HOME).resolve()
    home.mkdir(exist_ok=True)
    if Path("dagster.yaml").exists():
        shutil.copyfile("dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _apply_settings(args: argparse.Namespace) -> None:
    """Flags win over the environment, which wins over ``DEFAULTS``."""
    if args.source:
        os.environ["E6_SOURCE"] = args.source
    if getattr(args, "rows", None):
        os.environ["E6_SOURCE"] = f"sample:{args.rows}"
    if args.data_dir:
        os.environ["E6_DATA_DIR"] = args.data_dir
    if getattr(args, "id_universe", None):
        os.environ["E6_ID_UNIVERSE"] = args.id_universe
    for name, default in DEFAULTS.items():
        os.environ.setdefault(name, default)


def _check_source() -> None:
    from e6_assets.resources import CaptionSource, DataDir

    data_dir = DataDir(path=os.environ["E6_DATA_DIR"]).layout().root
    resolved = CaptionSource(spec=os.environ["E6_SOURCE"]).resolve(data_dir)
    print(f"source: {resolved.description} ({len(resolved.files)} monthly files)", flush=True)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            return (
                error.cause.message if error.cause and "Failure" not in error.cls_name else error.message
            ).strip()
    return "run failed"


def _run(selection: list, tags: dict[str, str], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from e6_assets.assets import ALL_ASSETS
    from e6_assets.definitions import resources

    return dg.materialize(
        ALL_ASSETS,
        selection=selection,
        instance=instance,
        tags=tags,
        resources=resources(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )


def build(args: argparse.Namespace) -> int:
    from e6_assets.assets import MERGED_ASSETS, PER_SHARD_ASSETS
    from e6_assets.assets.captions import MERGED_CAPTION_ASSETS, PER_SHARD_CAPTION_ASSETS
    from e6_assets.assets.merge import summary_of
    from e6_assets.captions import CaptionCounts
    from e6_assets.pipeline import read_counts
    from e6_assets.resources import DataDir

    try:
        shards = parse_shard_range(args.shards)
        _apply_settings(args)
        _check_source()
    except (ValueError, SourceNotFound) as error:
        print(f"e6-assets: {error}", file=sys.stderr)
        return 2
    instance_home()
    instance = dg.DagsterInstance.get()
    range_tags = {
        "dagster/asset_partition_range_start": shards[0],
        "dagster/asset_partition_range_end": shards[-1],
    }
    if shards != SHARD_KEYS[int(shards[0]) : int(shards[-1]) + 1]:
        print("e6-assets: --shards must be one contiguous range for a single run", file=sys.stderr)
        return 2
    # Without an id universe the merge assets would only record a skip: leave them out of the runs
    # (at full scale that saves a thousand planned-materialization events).
    merging = bool(os.environ["E6_ID_UNIVERSE"].strip())
    per_shard = PER_SHARD_ASSETS if merging else PER_SHARD_CAPTION_ASSETS
    merged_assets = MERGED_ASSETS if merging else MERGED_CAPTION_ASSETS
    result = _run(list(per_shard), range_tags, instance)
    if not result.success:
        print(f"e6-assets: shard build failed: {_failure_message(result)}", file=sys.stderr)
        return 1
    layout = DataDir(path=os.environ["E6_DATA_DIR"]).layout()
    totals = sum((read_counts(layout, key) for key in shards), CaptionCounts())
    print(
        f"shards: {len(shards)} ({shards[0]}...{shards[-1]}), rows: {totals.rows}, "
        f"captions from summaries: {totals.from_summary}, from tags: {totals.from_tags}, "
        f"empty: {totals.empty}, duplicates dropped: {totals.duplicates_dropped}"
    )
    if args.no_merge:
        return 0
    missing = layout.missing_fragments()
    if missing:
        print(f"merged files not rebuilt: {len(missing)} shards are not built yet (first: {missing[0]})")
        return 0
    merged = _run(list(merged_assets), {}, instance)
    if not merged.success:
        print(f"e6-assets: merge failed: {_failure_message(merged)}", file=sys.stderr)
        return 1
    print(f"wrote {layout.meta_cap_json} and {layout.meta_cap_tar_gz}")
    if merging and (summary := summary_of(merged)):
        print(f"wrote {layout.meta_lat_v2_json} and {layout.missing_json}: {summary}")
    return 0


def ui(args: argparse.Namespace) -> int:
    _apply_settings(args)
    instance_home()
    os.execv(sys.executable, [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port)])
    return 0  # pragma: no cover


def sample(args: argparse.Namespace) -> int:
    from e6_assets.sample import write_sample

    files = write_sample(Path(args.out), args.rows, args.seed, args.jobs)
    print(f"wrote {len(files)} synthetic monthly files ({args.rows} rows) to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e6-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def settings(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--source", help="E6_SOURCE: sample[:ROWS], hf://datasets/OWNER/REPO[@REV] or a folder"
        )
        sub.add_argument("--data-dir", help="E6_DATA_DIR: where outputs go (default ./data)")
        sub.add_argument("--rows", type=int, help="shorthand for --source sample:ROWS")
        sub.add_argument("--id-universe", help="E6_ID_UNIVERSE: meta_lat.json to merge captions into")

    build_cmd = commands.add_parser("build", help="materialize a range of shards, then the merged files")
    build_cmd.add_argument(
        "--shards", default="0000...0999", help="a shard or a range, e.g. 0042 or 0000...0999"
    )
    build_cmd.add_argument(
        "--no-merge", action="store_true", help="build the shards only, not the merged files"
    )
    settings(build_cmd)
    build_cmd.set_defaults(func=build)

    ui_cmd = commands.add_parser("ui", help="open the Dagster UI (dagster dev) on the same instance")
    ui_cmd.add_argument("--host", default="127.0.0.1")
    ui_cmd.add_argument("--port", type=int, default=3000)
    settings(ui_cmd)
    ui_cmd.set_defaults(func=ui)

    sample_cmd = commands.add_parser("sample", help="write the synthetic sample's monthly files to a folder")
    sample_cmd.add_argument("--out", required=True)
    sample_cmd.add_argument("--rows", type=int, default=20_000)
    sample_cmd.add_argument("--seed", type=int, default=621)
    sample_cmd.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="months written at once (same files for any)"
    )
    sample_cmd.set_defaults(func=sample)

    args = parser.parse_args(argv)
    # Dagster marks single-run backfills and partitioned checks beta/preview: say it once, in the README.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
