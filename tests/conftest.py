"""Shared fixtures: a migrated database per test, on SQLite (default) or PostgreSQL.

KTN_TEST_DATABASE_URL chooses the database, e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/test. Tests that use the database are marked ``db``
automatically; .ci/run runs them again on PostgreSQL.
"""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "true")  # as bot.telegram does: PTB's non-deprecated form

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import migrate
from storage.db import create_engine, is_sqlite, session_factory

ROOT = Path(__file__).resolve().parent.parent
DB_FIXTURES = {"db_url", "engine", "sessions", "session", "migrated_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches the database with ``db``."""
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: uses the database (also run on PostgreSQL in CI)")


async def reset_postgres(url: str) -> None:
    """Drop everything in the public schema."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    """An empty database: a fresh SQLite file, or the PostgreSQL test database wiped clean."""
    url = os.environ.get("KTN_TEST_DATABASE_URL")
    if not url:
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    if not is_sqlite(url):
        await reset_postgres(url)
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database's engine."""
    eng = create_engine(db_url)
    await migrate.upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def migrated_url(engine: AsyncEngine, db_url: str) -> str:
    """The URL of a migrated database (for code that opens its own engine)."""
    return db_url


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the app uses."""
    return session_factory(engine)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session; the test commits when it wants to."""
    async with sessions() as s:
        yield s
