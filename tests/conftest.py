"""Shared fixtures: a migrated database per test, on SQLite (default) or PostgreSQL.

KTN_TEST_DATABASE_URL chooses the database, e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/test. Tests that use the database are marked ``db``
automatically; .ci/run runs them again on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket

os.environ.setdefault("PTB_TIMEDELTA", "true")  # as bot.telegram does: PTB's non-deprecated form

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import migrate
from storage.db import create_engine, is_sqlite, session_factory
from storage.models import Base

ROOT = Path(__file__).resolve().parent.parent
_getaddrinfo = socket.getaddrinfo


def _loopback_only(host: object, *args: object, **kwargs: object) -> object:
    """The tests reach no network but loopback: a name that is not this machine's fails at once
    (a setting left at a real API's host shows up as a failing test, never as a request)."""
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "", "localhost", "::1") and not str(name).startswith("127."):
        raise socket.gaierror(socket.EAI_NONAME, f"no network in tests: {name}")
    return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.getaddrinfo = _loopback_only  # type: ignore[assignment]
# Fixtures shared by several test packages live in tests/support; loading them here makes them
# available everywhere without importing a fixture by name (which linters read as unused).
pytest_plugins = ["tests.support.telegram_run", "tests.support.live", "tests.support.open311"]
DB_FIXTURES = {"db_url", "engine", "sessions", "session", "migrated_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches the database with ``db``."""
    for item in items:
        if item.get_closest_marker("pacing"):
            continue  # measures Telegram's pacing, not the database: the SQLite pass is enough
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_configure(config: pytest.Config) -> None:
    _own_postgres_database_per_xdist_worker()
    config.addinivalue_line("markers", "db: uses the database (also run on PostgreSQL in CI)")
    config.addinivalue_line(
        "markers", "pacing: a long run at Telegram's real rates; CI runs it once, on SQLite"
    )


def _own_postgres_database_per_xdist_worker() -> None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (``<name>_gw0`` ...),
    created on first use: workers wiping one shared database would break each other's tests."""
    url = os.environ.get("KTN_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker or is_sqlite(url):
        return
    parsed = make_url(url)
    own = parsed.set(database=f"{parsed.database}_{worker}")

    async def create() -> None:
        admin = create_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{own.database}"'))
        await admin.dispose()

    asyncio.run(create())
    os.environ["KTN_TEST_DATABASE_URL"] = own.render_as_string(hide_password=False)


async def reset_postgres(url: str) -> None:
    """Drop everything in the public schema."""
    _clean_at_head.discard(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


# PostgreSQL URLs this run migrated to head, whose rows a test may delete instead of migrating
# again (~1 s per test); and the SQLite file every test's database is copied from (~0.2 s).
_clean_at_head: set[str] = set()
_sqlite_template: list[Path] = []


async def _empty_postgres(url: str) -> None:
    """Delete every row and restart the ids: as fresh as a new migration, ten times faster."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
        sequences = await conn.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        )
        for (name,) in sequences:
            await conn.execute(text(f'ALTER SEQUENCE "{name}" RESTART'))
    await engine.dispose()


async def _migrated_sqlite(path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A migrated SQLite file at ``path``, copied from one migrated once per run."""
    if not _sqlite_template:
        template = tmp_path_factory.mktemp("template") / "migrated.db"
        eng = create_engine(f"sqlite+aiosqlite:///{template}")
        await migrate.upgrade(eng)
        await eng.dispose()  # the last connection to close checkpoints the WAL into the file
        _sqlite_template.append(template)
    _copy_sqlite(_sqlite_template[0], path)


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a closed SQLite database (a few ms: no need to leave the event loop)."""
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def _test_url(tmp_path: Path) -> str:
    return os.environ.get("KTN_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's database: migrated if the test also uses ``engine``, else empty (a fresh
    SQLite file, or the PostgreSQL test database wiped clean)."""
    url = _test_url(tmp_path)
    if not is_sqlite(url) and "engine" not in request.fixturenames:
        await reset_postgres(url)
    return url


@pytest.fixture
async def engine(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A freshly migrated database's engine."""
    url = _test_url(tmp_path)
    if is_sqlite(url):
        await _migrated_sqlite(tmp_path / "test.db", tmp_path_factory)
    elif url in _clean_at_head:
        await _empty_postgres(url)
    else:
        await reset_postgres(url)
        eng = create_engine(url)
        await migrate.upgrade(eng)
        await eng.dispose()
        _clean_at_head.add(url)
    eng = create_engine(url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def migrated_url(engine: AsyncEngine) -> str:
    """The URL of a migrated database (for code that opens its own engine)."""
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the app uses."""
    return session_factory(engine)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session; the test commits when it wants to."""
    async with sessions() as s:
        yield s
