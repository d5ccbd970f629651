"""Exit 0 when PostgreSQL at 127.0.0.1:5432 accepts user postgres and has database test."""

import asyncio
import sys

import asyncpg


async def main() -> int:
    try:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test", timeout=5)
    except Exception as exc:  # any failure means "not ready"
        print(f"PostgreSQL not ready: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    await conn.close()
    return 0


sys.exit(asyncio.run(main()))
