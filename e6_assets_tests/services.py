"""PostgreSQL and Redis for the deployment tests (a pytest plugin, loaded by conftest.py).

The servers are not started here: ``bash .ci/run`` starts throwaway ones on 127.0.0.1 and sets
``E6_TEST_POSTGRES_URL`` (a superuser's URL, e.g. ``postgresql://e6:pw@127.0.0.1:5432/postgres``) and
``E6_TEST_REDIS_URL`` (``redis://127.0.0.1:6379/0``). Without them the tests that need a server are
skipped, saying so; with them set, a server that does not answer fails those tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = "E6_TEST_POSTGRES_URL"
REDIS_URL = "E6_TEST_REDIS_URL"
HOW = "bash .ci/run starts one (see the README's Development section)"

NewDatabase = Callable[[str], dict[str, str]]
# What the README asks for on PostgreSQL (and deploy/start sets): events stored in batches, and one
# planned-materialization event per asset of a ranged run instead of one per shard.
POSTGRES_EVENT_SETTINGS = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
}


def _setting(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.skip(f"{name} is not set: no {what} server to test against ({HOW})")
    return value


@pytest.fixture(scope="session")
def postgres() -> Iterator[NewDatabase]:
    """A factory of throwaway databases on the test server: ``new_database(label)`` creates one and
    returns the ``DAGSTER_PG_*`` variables that ``deploy/*/dagster.yaml`` read; all are dropped at the
    end of the session."""
    import psycopg2

    url = _setting(POSTGRES_URL, "PostgreSQL")
    parts = urlsplit(url)
    admin = psycopg2.connect(url)
    admin.autocommit = True
    session = uuid.uuid4().hex[:8]
    created: list[str] = []

    def new_database(label: str) -> dict[str, str]:
        name = f"e6_test_{session}_{len(created)}_{label}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return {
            "DAGSTER_PG_HOST": parts.hostname or "127.0.0.1",
            "DAGSTER_PG_PORT": str(parts.port or 5432),
            "DAGSTER_PG_USERNAME": parts.username or "",
            "DAGSTER_PG_PASSWORD": parts.password or "",
            "DAGSTER_PG_DB": name,
        }

    try:
        yield new_database
    finally:
        with admin.cursor() as cursor:
            for name in created:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server for the Celery broker; answers a ping or fails the test."""
    import redis

    url = _setting(REDIS_URL, "Redis")
    redis.Redis.from_url(url, socket_timeout=5).ping()
    return url


@dataclass(frozen=True)
class InstanceConfig:
    """A ``dagster.yaml`` to test with and the variables it reads."""

    kind: str
    dagster_yaml: Path
    env: dict[str, str] = field(default_factory=dict)

    def home(self, folder: Path) -> Path:
        """``folder`` made a DAGSTER_HOME holding this configuration."""
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.dagster_yaml, folder / "dagster.yaml")
        return folder

    @contextmanager
    def open(self, home: Path) -> Iterator[dg.DagsterInstance]:
        """The instance of ``home`` (as DAGSTER_HOME) in this process, with this configuration's variables."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", str(home))
            for name, value in self.env.items():
                patch.setenv(name, value)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                yield instance


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def instance_config(request: pytest.FixtureRequest) -> InstanceConfig:
    """The project's dagster.yaml (SQLite under DAGSTER_HOME), then deploy/postgres/dagster.yaml on a
    throwaway database of the test server (skipped without one); one instance per test module."""
    if request.param == "sqlite":
        return InstanceConfig("sqlite", REPO / "dagster.yaml")
    new_database: NewDatabase = request.getfixturevalue("postgres")
    return InstanceConfig(
        "postgres",
        REPO / "deploy" / "postgres" / "dagster.yaml",
        {**new_database("instance"), **POSTGRES_EVENT_SETTINGS},
    )
