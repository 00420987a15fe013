"""Dagster's SQLite event log, with its engines kept open and batches written in one transaction.

Dagster's ``SqliteEventLogStorage`` creates a SQLAlchemy engine for every write and disposes of it
after, so nothing is reused between writes: on a 2-core machine every stored event costs about 11 ms,
most of it engine and statement set-up, and a build of 1000 shards stores thousands of events. This
subclass keeps one engine per database file (the index and the most recent runs'), so connections
and compiled statements are reused, and writes a batch of events (``DAGSTER_EVENT_BATCH_SIZE``; a
ranged run's materializations come as one batch) in one transaction per database file instead of one
per event. Dagster batches only materializations; ``stored_together`` gives the same to any events a
step records in a row, such as its per-shard check results. The tables, files and queries are
Dagster's own: an instance can switch between this class and the default at any time.

It overrides ``_connect``, ``_has_asset_key_index_cols_on_connection``, ``_store_asset_event`` and
``_store_asset_check_evaluation_planned``, which are not public Dagster APIs (there is no public hook
for how the SQLite storage connects, caches its schema, keeps each asset's latest event or plans a
check); the README says so. Configure it in ``dagster.yaml``::

    event_log_storage:
      module: e6_assets.event_storage
      class: PooledSqliteEventLogStorage
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._config import StringSource
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.engine import Connection, Engine

_BUSY_TIMEOUT_SECONDS = 30  # as Dagster's own SQLite storages wait on a locked database
_OPEN_ENGINES = 8  # the index database and the runs written or read most recently


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that reuses one engine per database file and batches writes."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        # Where Dagster's default SQLite storage keeps the event log, so the two are interchangeable.
        if not base_dir:
            if not os.environ.get("DAGSTER_HOME"):
                raise dg.DagsterInvariantViolationError(
                    "PooledSqliteEventLogStorage needs DAGSTER_HOME set, or `base_dir` in its config"
                )
            base_dir = os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._batch = threading.local()
        self._schema_present: set[str] = set()  # tables and columns known to exist
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": dg.Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = db.create_engine(
                self.conn_string_for_shard(shard),
                # One connection per file is enough: every use is serialised by ``self._db_lock``,
                # which is also why the connection may move between threads.
                poolclass=db.pool.QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": _BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            while len(self._engines) >= _OPEN_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
        self._engines[shard] = engine  # most recently used last
        return engine

    @contextmanager
    def _transaction(self, shard: str) -> Iterator[Connection]:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        batch: tuple[ExitStack, dict[str, Connection]] | None = getattr(self._batch, "open", None)
        if batch is None:
            with self._db_lock, self._transaction(shard) as conn:
                yield conn
            return
        stack, connections = batch  # inside store_event_batch: one transaction per file for the batch
        if shard not in connections:
            connections[shard] = stack.enter_context(self._transaction(shard))
        yield connections[shard]

    def has_table(self, table_name: str) -> bool:
        # Asked before every asset and check event is stored (sometimes while a connection is open),
        # and Dagster answers with a new engine each time. A table, once there, stays (only a
        # migration adds tables), so a yes is remembered.
        if table_name not in self._schema_present:
            if not super().has_table(table_name):
                return False
            self._schema_present.add(table_name)
        return True

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        # Also asked for every asset event (a table inspection each time); remembered the same way.
        # A private Dagster method, like ``_connect``.
        if "asset_key_index_cols" not in self._schema_present:
            if not super()._has_asset_key_index_cols_on_connection(conn):
                return False
            self._schema_present.add("asset_key_index_cols")
        return True

    @contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Every event this thread stores inside the block is written in one transaction per
        database file, committed when the block ends (rolled back if it raises). Inside a block
        already open, nothing more."""
        if getattr(self._batch, "open", None) is not None:
            yield
            return
        with self._db_lock, ExitStack() as stack:
            self._batch.open = (stack, {})
            try:
                yield
            finally:
                self._batch.open = None

    def store_event_batch(self, events: Sequence[Any]) -> None:
        """Store ``events`` as ``store_event`` would, in one transaction per database file.

        If anything fails, every transaction of the batch rolls back and Dagster stores the events
        one by one (``DagsterInstance.handle_new_event`` falls back to that).
        """
        with self.one_transaction():
            self._batch.superseded = _superseded_asset_entries(events)
            try:
                for event in events:
                    self.store_event(event)
            finally:
                self._batch.superseded = frozenset()

    def _store_asset_event(self, conn: Connection, event: Any, event_id: int) -> None:
        # Each asset's row of the asset_keys table holds its latest event of each kind: in a batch
        # of 1000 materializations of one asset, 999 rows written and overwritten in the same
        # transaction. Only the batch's last event of each kind and asset writes it, which leaves
        # the row as writing every one would. A private Dagster method, like ``_connect``.
        if id(event) not in getattr(self._batch, "superseded", ()):
            super()._store_asset_event(conn, event, event_id)

    def _store_asset_check_evaluation_planned(self, event: Any, event_id: int | None) -> None:
        # One row per planned partition, each holding the planned event. Dagster's own method
        # serializes that event again for every row: a ranged step plans 1000 shards, and its
        # event lists all 1000, so a million partition keys are serialized per check, over a second
        # before each build's first step. The same rows, with the event serialized once.
        planned = event.dagster_event.event_specific_data
        subset = planned.partitions_subset
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        rows = [{**row, "partition": key} for key in (subset.get_partition_keys() if subset else [None])]
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), rows)

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()


def _superseded_asset_entries(events: Sequence[Any]) -> frozenset[int]:
    """The ``id()`` of each event of ``events`` followed, later in ``events``, by an event of the
    same kind for the same asset: the asset_keys row the first writes, the later one overwrites
    column for column."""
    later: set[tuple[Any, Any]] = set()
    superseded: set[int] = set()
    for event in reversed(events):
        dagster_event = event.dagster_event if event.is_dagster_event else None
        if dagster_event is None or dagster_event.asset_key is None:
            continue
        kind = (dagster_event.event_type_value, dagster_event.asset_key)
        if kind in later:
            superseded.add(id(event))
        later.add(kind)
    return frozenset(superseded)


@contextmanager
def stored_together(instance: dg.DagsterInstance) -> Iterator[None]:
    """The events stored inside the block in one transaction per database file, where the instance
    keeps its events in this class's storage; elsewhere (PostgreSQL, Dagster's own SQLite class) as
    usual, one at a time.

    A step wraps the events it yields in a row in this (its per-shard check results: 1000 events,
    which Dagster does not batch): each is still stored as it is yielded, by the same thread, but
    they are committed together, a thousand commits fewer per step.
    """
    storage = instance.event_log_storage
    if isinstance(storage, PooledSqliteEventLogStorage):
        with storage.one_transaction():
            yield
    else:
        yield
