"""Scale-out benchmark: inbound updates/s with 1, 2 and 3 `ktn-bot run` workers on PostgreSQL.

    .venv/bin/python bench/scale.py --db-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

The database is wiped. Workers run in webhook mode behind the round-robin proxy of
tests/test_scaleout.py; the fake Bot API (in this process) delivers up to 100 updates at once,
one chat's updates in order, as Telegram does. U users each send K messages, each waiting for
the bot's answer before the next (a resident asking for /bantuan: one core transaction, one
reply). Flood limits are lifted so the figure is the workers' handling rate, including the
deployment-wide send-slot accounting on PostgreSQL. Also: the scheduler's take-over time after
SIGKILL of its leader. Everything (fake, proxy, workers, database) shares this machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "true")

import httpx  # noqa: E402

from bot.sandbox.telegram_fake import TelegramFake  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from tests.conftest import reset_postgres  # noqa: E402
from tests.roles.test_several_workers import prepare, the_leader, workers  # noqa: E402

LIFTED = {"KTN_OUTBOX__TELEGRAM_PER_SECOND": "100000"}


async def user(fake: TelegramFake, uid: int, messages: int) -> None:
    """One user: /start once, then ``messages`` times /bantuan, each waiting for the answer."""
    fake.start(uid)
    await fake.wait_for_message(uid, timeout=120)
    for _ in range(messages):
        fake.send_text(uid, uid, "/bantuan")
        await fake.wait_for_message(uid, timeout=120)


async def one_run(
    url: str, count: int, users: int, messages: int, tmp: Path
) -> tuple[float, float]:
    """updates/s with ``count`` workers, and the scheduler's take-over seconds (SIGKILL)."""
    tmp.mkdir(parents=True)  # noqa: ASYNC240 - once, before anything runs
    await reset_postgres(url)
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await prepare(session_factory(engine))
    await engine.dispose()
    async with TelegramFake(flood=False) as fake:
        ids = range(800_000, 800_000 + users)
        for uid in ids:
            fake.add_user(uid, "Warga", str(uid))
        async with workers(fake, url, tmp, count, **LIFTED) as group:
            started = time.perf_counter()
            await asyncio.gather(*(user(fake, uid, messages) for uid in ids))
            rate = users * (messages + 1) / (time.perf_counter() - started)
            takeover = float("nan")
            if count > 1:
                async with httpx.AsyncClient() as client:
                    leader = await the_leader(group, client)
                    leader.proc.kill()
                    killed = time.perf_counter()
                    await leader.proc.wait()
                    await the_leader([w for w in group if w is not leader], client)
                    takeover = time.perf_counter() - killed
    return rate, takeover


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db-url", required=True, help="a PostgreSQL database to wipe and use")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        base = {}
        for count in (1, 2, 3):
            results = [
                await one_run(
                    args.db_url, count, args.users, args.messages, Path(tmp_name) / f"{count}-{i}"
                )
                for i in range(args.runs)
            ]
            rate = statistics.median(r for r, _ in results)
            base.setdefault("one", rate)
            line = (
                f"S1 {count} worker(s): {rate:.0f} updates/s "
                f"({args.users} users x {args.messages + 1} messages), "
                f"x{rate / base['one']:.2f} of one worker"
            )
            if count > 1:
                line += f"; scheduler take-over after SIGKILL {results[0][1]:.1f} s"
            print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
