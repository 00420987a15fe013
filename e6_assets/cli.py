"""``e6-assets``: build shards and the merged files through Dagster, recorded in the instance the UI reads."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from e6_assets.core.settings import DEFAULTS
from e6_assets.core.shards import SHARD_KEYS, parse_shard_range
from e6_assets.core.sources import SourceNotFound

if TYPE_CHECKING:
    import dagster as dg

    from e6_assets.core.layout import DataLayout

# Dagster is imported inside the commands, not here: the build's worker processes import the main
# module (this one, when run as ``e6-assets``) before they start, and need none of Dagster.

DEFAULT_HOME = ".dagster_home"


# How runs store their events, for every run this process (or the UI it starts) creates: a ranged
# run's materializations as batches of up to 1000 events, and one "planned" event per asset of a
# ranged run instead of one per shard. A failed ranged run then does not mark its shards failed; they
# stay missing, which is what the fill schedule looks for.
EVENT_SETTINGS = {"DAGSTER_EVENT_BATCH_SIZE": "1000", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}


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
    if getattr(args, "caption_overrides", None):
        os.environ["E6_CAPTION_OVERRIDES"] = args.caption_overrides
    for name, default in DEFAULTS.items():
        os.environ.setdefault(name, default)


def _check_source() -> None:
    from e6_assets.defs.resources import CaptionSource, DataDir

    data_dir = DataDir(path=os.environ["E6_DATA_DIR"]).layout().root
    resolved = CaptionSource(spec=os.environ["E6_SOURCE"]).resolve(data_dir)
    print(f"source: {resolved.description} ({len(resolved.files)} monthly files)", flush=True)


# Errors whose message names the file and the problem: shown without the exception's class.
_SELF_EXPLAINING_ERRORS = {"WriteError", "SourceError"}


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data:  # a dg.Failure: its words
            return event.step_failure_data.user_failure_data.description or "run failed"
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            if error.cause and "Failure" not in error.cls_name:
                error = error.cause
            message = error.message.strip()
            if error.cls_name in _SELF_EXPLAINING_ERRORS:  # their message says it all
                message = message.split(": ", 1)[-1]
            return message
    return "run failed"


def _say(message: str) -> None:
    print(f"e6-assets: {message}", file=sys.stderr, flush=True)


def _run(
    selection: list, tags: dict[str, str], instance: dg.DagsterInstance, assets: list | None = None
) -> dg.ExecuteInProcessResult:
    """One in-process run (of ``selection`` among ``assets``, by default the build's), tagged with this
    process (see ``run_recovery``), once the pool is free."""
    from e6_assets.definitions import resources
    from e6_assets.defs.assets import ALL_ASSETS
    from e6_assets.defs.per_shard import SHARD_POOL
    from e6_assets.run_recovery import process_tags, wait_for_pool

    wait_for_pool(instance, SHARD_POOL, _say)
    import dagster as dg

    return dg.materialize(
        assets or ALL_ASSETS,
        selection=selection,
        instance=instance,
        tags={**tags, **process_tags()},
        resources=resources(),
        raise_on_error=False,
        # The steps print their own progress lines; Dagster's INFO lines stay in the run's event log.
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )


def _recover(instance: dg.DagsterInstance, data_root: Path) -> None:
    """Clean up after a build that was killed: its runs, its pool slots, its temporary files."""
    from e6_assets.core.atomic import remove_stale_temp_files
    from e6_assets.run_recovery import recover_dead_runs, run_process

    for run in recover_dead_runs(instance):
        _say(f"marked run {run.run_id} failed: its process ({run_process(run)}) is gone")
    removed = remove_stale_temp_files(data_root)
    if removed:
        _say(f"removed {len(removed)} temporary files left by an interrupted build")


def build(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        return _build(args, stack)


def _build(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    from e6_assets.core.captions import CaptionCounts
    from e6_assets.core.locks import build_locks
    from e6_assets.core.pipeline import read_counts
    from e6_assets.defs.assets import MERGED_ASSETS, PER_SHARD_ASSETS
    from e6_assets.defs.captions.assets import MERGED_CAPTION_ASSETS, PER_SHARD_CAPTION_ASSETS
    from e6_assets.defs.merge.assets import summary_of
    from e6_assets.defs.resources import DataDir

    try:
        shards = parse_shard_range(args.shards)
        _apply_settings(args)
        _check_source()
    except (ValueError, SourceNotFound) as error:
        print(f"e6-assets: {error}", file=sys.stderr)
        return 2
    home = instance_home()
    import dagster as dg

    instance = stack.enter_context(dg.DagsterInstance.get())
    layout = DataDir(path=os.environ["E6_DATA_DIR"]).layout()
    range_tags = {
        "dagster/asset_partition_range_start": shards[0],
        "dagster/asset_partition_range_end": shards[-1],
    }
    if shards != SHARD_KEYS[int(shards[0]) : int(shards[-1]) + 1]:
        print("e6-assets: --shards must be one contiguous range for a single run", file=sys.stderr)
        return 2
    stack.enter_context(build_locks(home, layout.root, _say))
    _recover(instance, layout.root)
    if os.environ["E6_CAPTION_OVERRIDES"].strip() or layout.overrides_dir.is_dir():
        observed = _observe_overrides(instance, layout)
        if not observed.success:
            print(f"e6-assets: caption overrides: {_failure_message(observed)}", file=sys.stderr)
            return 1
    # Without an id universe the merge assets would only record a skip: leave them out of the runs
    # (at full scale that saves a thousand planned-materialization events).
    merging = bool(os.environ["E6_ID_UNIVERSE"].strip())
    per_shard = PER_SHARD_ASSETS if merging else PER_SHARD_CAPTION_ASSETS
    merged_assets = MERGED_ASSETS if merging else MERGED_CAPTION_ASSETS
    result = _run(list(per_shard), range_tags, instance)
    if not result.success:
        print(f"e6-assets: shard build failed: {_failure_message(result)}", file=sys.stderr)
        return 1
    totals = sum((read_counts(layout, key) for key in shards), CaptionCounts())
    print(
        f"shards: {len(shards)} ({shards[0]}...{shards[-1]}), rows: {totals.rows}, "
        f"captions from summaries: {totals.from_summary}, from tags: {totals.from_tags}, "
        f"empty: {totals.empty}, duplicates dropped: {totals.duplicates_dropped}"
        + (f", from overrides: {totals.from_override}" if totals.from_override else "")
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


def _observe_overrides(instance: dg.DagsterInstance, layout: DataLayout) -> dg.ExecuteInProcessResult:
    """Observe ``caption_overrides`` (stage the folder, record the shards whose overrides changed) as
    the schedule would, so that the build applies them and the automation does not rebuild them again."""
    from e6_assets.definitions import build_defs
    from e6_assets.defs.automation.schedules import OBSERVE_OVERRIDES_JOB
    from e6_assets.run_recovery import process_tags

    result = (
        build_defs()
        .resolve_job_def(OBSERVE_OVERRIDES_JOB)
        .execute_in_process(
            instance=instance,
            tags=process_tags(),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    )
    if result.success:
        changed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        with_overrides = len(list(layout.overrides_dir.glob("*.parquet")))
        print(
            f"caption overrides: {with_overrides} shards have overrides, {len(changed)} changed", flush=True
        )
    return result


def recaption_export(args: argparse.Namespace) -> int:
    """Build the recaption queue of every shard, then split it into K work lists (``recaption_lists``)."""
    from e6_assets.core.locks import build_locks
    from e6_assets.defs.assets import ALL_ASSETS, RECAPTION_ASSETS
    from e6_assets.defs.recaption.assets import RECAPTION_LISTS, RECAPTION_QUEUE
    from e6_assets.defs.resources import DataDir, Recaption

    _apply_settings(args)
    if args.lists is not None:
        os.environ["E6_RECAPTION_LISTS"] = str(args.lists)
    try:
        count = Recaption(work_lists=os.environ["E6_RECAPTION_LISTS"]).work_list_count
    except ValueError as error:
        print(f"e6-assets: {error}", file=sys.stderr)
        return 2
    layout = DataDir(path=os.environ["E6_DATA_DIR"]).layout()
    missing = [key for key in SHARD_KEYS if not layout.rearranged(key).exists()]
    if missing:
        first = missing[0]
        print(
            f"e6-assets: {len(missing)} shards are not built yet (first: {first}); run e6-assets build",
            file=sys.stderr,
        )
        return 2
    home = instance_home()
    import dagster as dg

    assets = [*ALL_ASSETS, *RECAPTION_ASSETS]
    with contextlib.ExitStack() as stack:
        instance = stack.enter_context(dg.DagsterInstance.get())
        stack.enter_context(build_locks(home, layout.root, _say))
        _recover(instance, layout.root)
        every_shard = {
            "dagster/asset_partition_range_start": SHARD_KEYS[0],
            "dagster/asset_partition_range_end": SHARD_KEYS[-1],
        }
        for selection, tags in (([RECAPTION_QUEUE], every_shard), ([RECAPTION_LISTS], {})):
            result = _run(selection, tags, instance, assets)
            if not result.success:
                print(f"e6-assets: recaption export failed: {_failure_message(result)}", file=sys.stderr)
                return 1
    [materialization] = result.asset_materializations_for_node(RECAPTION_LISTS.to_python_identifier())
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    per_list = ", ".join(str(metadata[f"list_{index:02d}"]) for index in range(count))
    print(f"queued for recaptioning: {metadata['queued']} posts; work lists (id % {count}): {per_list}")
    print(f"wrote {count} work lists to {layout.recaption_lists_dir}")
    return 0


def publish(args: argparse.Namespace) -> int:
    """Plan the upload of the build to E6_PUBLISH_REPO (a dry run), or with ``--yes`` make it, by
    materializing ``hub_release`` in the same instance as the builds."""
    from e6_assets.definitions import resources
    from e6_assets.defs.assets import ALL_ASSETS, PUBLISH_ASSETS
    from e6_assets.defs.publish.assets import HUB_RELEASE, NOT_CONFIGURED
    from e6_assets.defs.resources import HubPublishTarget

    _apply_settings(args)
    for value, name in ((args.repo, "E6_PUBLISH_REPO"), (args.revision, "E6_PUBLISH_REVISION")):
        if value:
            os.environ[name] = value
    if args.prefix is not None:
        os.environ["E6_PUBLISH_PREFIX"] = args.prefix
    if args.private:
        os.environ["E6_PUBLISH_PRIVATE"] = "1"
    try:
        target = HubPublishTarget().target()
    except ValueError as error:
        print(f"e6-assets: {error}", file=sys.stderr)
        return 2
    if target is None:
        print(f"e6-assets: {NOT_CONFIGURED}", file=sys.stderr)
        return 2
    instance_home()
    import dagster as dg

    result = dg.materialize(
        [*ALL_ASSETS, *PUBLISH_ASSETS],
        selection=[HUB_RELEASE],
        instance=dg.DagsterInstance.get(),
        resources=resources(),
        raise_on_error=False,
        run_config={
            "ops": {"hub_release": {"config": {"publish": args.yes}}},
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
    )
    if not result.success:
        print(f"e6-assets: publish failed: {_failure_message(result)}", file=sys.stderr)
        return 1
    [materialization] = result.asset_materializations_for_node("hub_release")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    print(metadata["plan"])
    if metadata["mode"] == "published":
        via = (
            f" (through pull request {metadata['pull_request']}, merged)" if metadata["pull_request"] else ""
        )
        print(
            f"published {target} at {metadata['published_commit']} in {metadata['commits_made']} commits{via}"
        )
    elif metadata["mode"] == "dry run":
        print("dry run: nothing was changed on the Hub; run again with --yes to publish")
    return 0


def ui(args: argparse.Namespace) -> int:
    _apply_settings(args)
    instance_home()
    os.execv(sys.executable, [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port)])
    return 0  # pragma: no cover


def sample(args: argparse.Namespace) -> int:
    from e6_assets.core.sample import write_sample

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
        sub.add_argument(
            "--caption-overrides", help="E6_CAPTION_OVERRIDES: a folder of captioner output (JSONL) to apply"
        )

    build_cmd = commands.add_parser("build", help="materialize a range of shards, then the merged files")
    build_cmd.add_argument(
        "--shards", default="0000...0999", help="a shard or a range, e.g. 0042 or 0000...0999"
    )
    build_cmd.add_argument(
        "--no-merge", action="store_true", help="build the shards only, not the merged files"
    )
    settings(build_cmd)
    build_cmd.set_defaults(func=build)

    publish_cmd = commands.add_parser(
        "publish", help="upload the build to a Hub dataset repo (a dry run unless --yes)"
    )
    publish_cmd.add_argument("--repo", help="E6_PUBLISH_REPO: the Hub dataset repo, OWNER/NAME")
    publish_cmd.add_argument(
        "--revision", help="E6_PUBLISH_REVISION: the branch to publish to (default main)"
    )
    publish_cmd.add_argument(
        "--prefix", help="E6_PUBLISH_PREFIX: the folder of the tars in the repo (default captions/)"
    )
    publish_cmd.add_argument("--private", action="store_true", help="create the repo private if it is new")
    publish_cmd.add_argument("--data-dir", help="E6_DATA_DIR: the data root to publish (default ./data)")
    publish_cmd.add_argument(
        "--id-universe", help="E6_ID_UNIVERSE: also publish the merge built with this id universe"
    )
    mode = publish_cmd.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the plan only (the default)")
    mode.add_argument("--yes", action="store_true", help="publish: commit the plan to the Hub")
    publish_cmd.set_defaults(func=publish, source=None)

    export_cmd = commands.add_parser(
        "recaption-export",
        help="write the posts whose caption is only tags (or empty) as K JSONL work lists (id % K)",
    )
    export_cmd.add_argument(
        "--lists", type=int, help="E6_RECAPTION_LISTS: K, the number of lists (default 8)"
    )
    settings(export_cmd)
    export_cmd.set_defaults(func=recaption_export)

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
    for name, value in EVENT_SETTINGS.items():
        os.environ.setdefault(name, value)
    # Dagster marks single-run backfills and partitioned checks beta/preview: say it once, in the README.
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
