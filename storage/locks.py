"""PostgreSQL advisory locks: the statements that take and watch them.

The roles (``bot.roles.leader``, which names their keys) hold a session-level lock on a
dedicated asyncpg connection, outside SQLAlchemy's pool; the functions here are given that
connection and only run the SQL. The shared flood limits (``storage.send_slots``) serialise each
scope with a transaction-level lock. Keys share one bigint namespace per database, prefixed
"KTN" (0x4B544E) so as not to clash with other applications' locks.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection


def scope_key(name: str) -> int:
    """A stable advisory-lock key for a flood-limit scope name."""
    return 0x4B544E_10000000 + zlib.crc32(name.encode())


async def try_lock(conn: Any, key: int) -> bool:
    """Take the session-level lock ``key`` on an asyncpg connection if it is free."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


async def others_named(conn: Any, application_name: str) -> int:
    """How many other connections show ``application_name`` (asyncpg; a ping, too)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = $1 AND pid <> pg_backend_pid()",
            application_name,
        )
    )


async def lock_for_transaction(conn: AsyncConnection, key: int) -> None:
    """Wait for the transaction-level lock ``key`` (released at the commit or rollback)."""
    await conn.execute(select(func.pg_advisory_xact_lock(key)))
