"""What every per-shard asset shares: its partitioning, backfill policy and pool, and its progress."""

from __future__ import annotations

import sys
import time

import dagster as dg
from tqdm import tqdm

from e6_assets.defs.partitions import SHARDS

SHARD_POOL = "e6_shards"  # dagster.yaml limits this pool so that two runs never write one shard


def shard_backfill_policy() -> dg.BackfillPolicy:
    """How a backfill of a range of shards is cut into runs, from ``E6_SHARDS_PER_RUN`` (read when the
    code location loads): unset or 0, the range is one run (one machine); N, runs of at most N shards,
    which a run launcher can spread over workers (executors spread steps, not partitions)."""
    value = (dg.EnvVar("E6_SHARDS_PER_RUN").get_value("") or "0").strip()
    if not value.isdigit():
        raise ValueError(f"E6_SHARDS_PER_RUN must be a whole number of shards (0: one run), got {value!r}")
    shards = int(value)
    return dg.BackfillPolicy.multi_run(shards) if shards else dg.BackfillPolicy.single_run()


PER_SHARD = dict(
    partitions_def=SHARDS,
    backfill_policy=shard_backfill_policy(),
    pool=SHARD_POOL,
)


class StepProgress:
    """How far a step is, for two readers.

    The run's event log gets about ten lines per step, whatever the number of shards (each log line
    is a stored event). The person at a terminal gets one live line per step (shards done, rows per
    second, elapsed) that stays on screen as the step's summary; without a terminal (a UI run's
    captured output, a pipe) only that summary line is printed, once, when the step ends.
    """

    def __init__(self, context: dg.AssetExecutionContext, total: int, what: str = "", unit: str = "shards"):
        self._context, self._total, self._done, self._unit = context, total, 0, unit
        self._name = what or context.asset_key.to_user_string()
        self._started = time.monotonic()
        self._bar = tqdm(
            total=total,
            desc=self._name,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            bar_format="{desc}: {n_fmt}/{total_fmt} " + unit + ", {postfix} [{elapsed}]",
            dynamic_ncols=True,
        )
        self._bar.set_postfix_str("", refresh=False)
        self.rows = 0

    def __enter__(self) -> StepProgress:
        return self

    def advance(self, rows: int) -> None:
        """One more shard (or file) done, with ``rows`` rows."""
        self._done += 1
        self.rows += rows
        self._bar.set_postfix_str(f"{self.rows:,} rows, {self._rate():,.0f} rows/s", refresh=False)
        self._bar.update(1)
        if self._done == self._total or self._done % max(1, self._total // 10) == 0:
            self._context.log.info(f"{self._name}: {self._done}/{self._total} {self._unit}, {self.rows} rows")

    def _rate(self) -> float:
        return self.rows / max(time.monotonic() - self._started, 1e-9)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar.disable and self._done == self._total and self._total:
            elapsed = time.monotonic() - self._started
            print(
                f"{self._name}: {self._done}/{self._total} {self._unit}, {self.rows:,} rows, "
                f"{self._rate():,.0f} rows/s [{elapsed:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
        self._bar.close()
