"""Retention under load: the bot's alert latency (P2) while its leader purges a backlog.

    .venv/bin/python bench/purge.py                  # SQLite, 1,000,000 rows to purge
    .venv/bin/python bench/purge.py --pg postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Each backend is run twice on a database of the same size: ``--rows`` sent messages (outbox rows
with a resident's text, the kind with the most rows and the heaviest purge: each row's payload is
rewritten) seeded 60 days old, which ``[retention] outbox_text_days = 30`` purges as soon as the
bot starts leading, and the same rows seeded a day old, which nothing purges (the baseline).
In both runs the real bot (``python -m bot run``, its own process, as bench/bench.py's P2) serves
``--probes`` residents one after another; each one's latency is "Kirim" to the group alert at
the fake Bot API. The purge's progress is read from the database meanwhile: the figure is only
reported as "during the purge" if the purge was still running when the last probe was timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import prepared_db  # noqa: E402  (bench/harness.py)
from sqlalchemy import func, select, text  # noqa: E402

from bench import WARM_UP, RunningBot, percentiles  # noqa: E402  (bench/bench.py)
from storage.db import create_engine, is_sqlite  # noqa: E402
from storage.models import Outbox  # noqa: E402

TEXT = (
    "Laporan KTN-ABC123 Anda sudah ditangani oleh Bripka Andi. Catatan petugas: motor milik "
    "Bu Siti Aminah di Jl. Melati 12 sudah ditemukan dan dikembalikan kepada pemiliknya."
)
PAYLOAD = json.dumps({"reply": {"text": TEXT}, "lang": "id"})


async def seed_outbox(url: str, rows: int, age: timedelta) -> float:
    """``rows`` sent messages created ``age`` ago, in one statement; returns the seconds."""
    at = datetime.now(UTC) - age
    engine = create_engine(url)
    started = time.perf_counter()
    columns = (
        "channel, bot, chat_id, kind, payload, status, attempts, next_attempt_at, created_at, "
        "sent_at"
    )
    values = "'telegram', 'default', 500000 + i, 'reply', :payload, 'sent', 1, :at, :at, :at"
    async with engine.begin() as conn:
        if is_sqlite(url):
            stamp = at.replace(tzinfo=None).isoformat(sep=" ")
            await conn.execute(
                text(
                    f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    f"WHERE i < :rows) INSERT INTO outbox ({columns}) SELECT {values} FROM n"
                ),
                {"rows": rows, "payload": PAYLOAD, "at": stamp},
            )
        else:
            await conn.execute(
                text(
                    f"INSERT INTO outbox ({columns}) SELECT "
                    f"{values.replace(':payload', 'CAST(:payload AS json)')} "
                    "FROM generate_series(1, :rows) AS i"
                ),
                {"rows": rows, "payload": PAYLOAD, "at": at},
            )
        if not is_sqlite(url):  # as autovacuum would have, for a table grown over months
            await conn.execute(text("ANALYZE outbox"))
    await engine.dispose()
    return time.perf_counter() - started


async def remaining(url: str) -> int:
    """Messages past their 30 days whose text is still there."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(
                    Outbox.purged_at.is_(None),
                    Outbox.created_at < datetime.now(UTC) - timedelta(days=30),
                )
            )
    finally:
        await engine.dispose()
    return int(found or 0)


async def one_run(
    url: str | None, tmp: Path, rows: int, probes: int, purge: bool
) -> tuple[list[float], int, int, float]:
    """P2 latencies (ms) on a database with ``rows`` messages, old (purged) or young; the old
    texts left before and after the probes, and the probes' seconds."""
    db = await prepared_db(tmp / f"purge-{purge}.db", url=url)
    took = await seed_outbox(db, rows, timedelta(days=60 if purge else 1))
    print(f"   seeded {rows} {'old' if purge else 'recent'} messages in {took:.0f} s", flush=True)
    async with RunningBot(db, tmp) as bot:
        await bot.rate(WARM_UP)
        before = await remaining(db)
        started = time.perf_counter()
        found, _ = await bot.latencies(probes)
        seconds = time.perf_counter() - started
        after = await remaining(db)
    return found, before, after, seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages to purge")
    parser.add_argument("--probes", type=int, default=100, help="reports timed per run")
    parser.add_argument("--pg", metavar="URL", help="also on this PostgreSQL database (wiped)")
    args = parser.parse_args()
    backends = [("SQLite", None)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, url in backends:
            calm, *_ = await one_run(url, tmp, args.rows, args.probes, purge=False)
            print(f"P2 {name}, {args.rows} rows nothing purges: {percentiles(calm)}", flush=True)
            busy, before, after, seconds = await one_run(
                url, tmp, args.rows, args.probes, purge=True
            )
            during = after > 0
            print(
                f"P2 {name}, while the leader purges {args.rows} rows: {percentiles(busy)}; "
                f"{before - after} rows purged in the {seconds:.0f} s of the probes "
                f"({(before - after) / seconds:.0f} rows/s), {after} left at the last probe"
                + ("" if during else " (the purge ENDED before the last probe)"),
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
