"""Opening the database for the process: engine, sessions and the schema guard."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from storage import migrate
from storage.db import Sessions, create_engine, is_sqlite, ping, session_factory

log = logging.getLogger(__name__)


class SchemaBehind(Exception):
    """The PostgreSQL schema is older than this code; the operator must migrate first."""


@dataclass(slots=True)
class Database:
    """The process's engine and session factory."""

    engine: AsyncEngine
    sessions: Sessions

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await ping(conn)
        except Exception:  # any driver error means "unreachable" to a health check
            log.warning("database ping failed", exc_info=True)
            return False
        return True

    async def close(self) -> None:
        """Dispose of the engine's connections."""
        await self.engine.dispose()


def connect(settings: Settings) -> Database:
    """An engine and session factory from the settings (nothing is touched yet)."""
    engine = create_engine(
        settings.database.url,
        echo=settings.database.echo,
        busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
        sqlite_inline=settings.database.sqlite_inline,
        pool_size=settings.database.pool_size,
    )
    return Database(engine, session_factory(engine))


async def prepare_schema(db: Database, url: str) -> None:
    """Migrate an embedded SQLite database; refuse a PostgreSQL schema that is behind."""
    if is_sqlite(url):
        if not await migrate.is_up_to_date(db.engine):
            log.info("applying database migrations")
            await migrate.upgrade(db.engine)
        return
    current = await migrate.current_revision(db.engine)
    head = migrate.HEAD
    if current != head:
        raise SchemaBehind(
            f"the PostgreSQL schema is at revision {current or 'none (empty database)'} but this "
            f"version needs {head}: run `ktn-bot db upgrade` first (after a backup)"
        )
