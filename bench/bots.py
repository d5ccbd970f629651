"""Broadcast speed with one and with three Telegram bot tokens (issue 8: several bots).

    .venv/bin/python bench/bots.py                 # 900 residents, median of --runs
    .venv/bin/python bench/bots.py --recipients 3000 --runs 3

A coordinator's /umumkan to N residents of three villages goes through the real `run` process
and the suite's fake Bot API over HTTP on 127.0.0.1, with Telegram's limits (30 msg/s per bot):
once with one bot token for all, once with one token per village. Prints msg/s from pressing
Kirim to the last resident's message, the 429s, and the ratio (3 tokens / 1 token).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from bot.app import run  # noqa: E402
from bot.config import (  # noqa: E402
    BotSettings,
    DatabaseSettings,
    HttpSettings,
    Settings,
    TelegramSettings,
)
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import Area, Contact  # noqa: E402
from storage.types import utcnow  # noqa: E402
from tests.support.chats import load_areas  # noqa: E402

BOTS_AREAS = """code,name,level,parent_code,timezone
17,Bengkulu,provinsi,,Asia/Jakarta
17.71,Kota Bengkulu,kota,17,Asia/Jakarta
17.71.08,Kampung Melayu,kecamatan,17.71,Asia/Jakarta
17.71.08.1004,Sumber Jaya,kelurahan,17.71.08,Asia/Jakarta
17.71.08.1005,Padang Serai,kelurahan,17.71.08,Asia/Jakarta
17.71.08.1006,Teluk Sepang,kelurahan,17.71.08,Asia/Jakarta
"""
BOTS_VILLAGES = ("17.71.08.1004", "17.71.08.1005", "17.71.08.1006")
BOTS_TOKENS = (
    DEFAULT_TOKEN,
    "7000000002:AAFakeTelegramTokenForKtnBenchBot2000",
    "7000000003:AAFakeTelegramTokenForKtnBenchBot3000",
)
BOTS_KEYS = ("default", "village_2", "village_3")
BOTS_COORDINATOR = 900_001
BOTS_FIRST_RESIDENT = 300_000


async def p4_database(path: Path, bots: int, recipients: int) -> str:
    """Areas, a coordinator of the kecamatan and ``recipients`` consenting residents spread over
    three villages, each having started the bot of their village (the one bot when ``bots`` is
    1), as if they had scanned its poster."""
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await load_areas(sessions, BOTS_AREAS)
    now = utcnow()
    async with sessions() as s:
        ids = dict((await s.execute(select(Area.code, Area.id))).all())
        common = {"channel": "telegram", "language": "id", "consent_at": now, "created_at": now}
        rows = [
            {
                **common,
                "external_id": BOTS_COORDINATOR,
                "role": "coordinator",
                "area_id": ids["17.71.08"],
                "display_name": "Ibu Lurah",
                "bot": "default",
            }
        ]
        for i in range(recipients):
            village = i % len(BOTS_VILLAGES)
            rows.append(
                {
                    **common,
                    "external_id": BOTS_FIRST_RESIDENT + i,
                    "role": "resident",
                    "area_id": ids[BOTS_VILLAGES[village]],
                    "bot": BOTS_KEYS[village if bots > 1 else 0],
                }
            )
        await s.execute(insert(Contact), rows)
        await s.commit()
    await engine.dispose()
    return url


async def multi_bot_broadcast(bots: int, recipients: int, tmp: Path) -> tuple[float, int]:
    """msg/s of one /umumkan to ``recipients`` residents of three villages with ``bots``
    bot tokens (1: one bot for all; 3: one per village), and the 429s Telegram answered from
    pressing Kirim on."""
    db_url = await p4_database(tmp / f"bots-{bots}-{time.monotonic_ns()}.db", bots, recipients)
    # Telegram's limits per bot (30/s) and per group; the private-chat windows are lifted only
    # because the simulated coordinator clicks through /umumkan instantly (each resident gets
    # one message, far below them).
    limits = FloodLimits(per_private=((1000, 1.0),))
    async with TelegramFake(flood_limits=limits) as fake:
        fake_bots = [fake.get_bot(DEFAULT_TOKEN)]
        fake_bots += [fake.add_bot(token) for token in BOTS_TOKENS[1:bots]]
        fake.add_user(BOTS_COORDINATOR, "Ibu", "Lurah")
        fake_bots[0].started.add(BOTS_COORDINATOR)
        residents = set()
        for i in range(recipients):
            uid = BOTS_FIRST_RESIDENT + i
            fake.add_user(uid, "Warga", str(uid))
            fake_bots[(i % len(BOTS_VILLAGES)) if bots > 1 else 0].started.add(uid)
            residents.add(uid)
        extra = [
            BotSettings(key=BOTS_KEYS[j], token_env=f"KTN_BENCH_BOT_{j}", areas=[BOTS_VILLAGES[j]])
            for j in range(1, bots)
        ]
        for j in range(1, bots):
            os.environ[f"KTN_BENCH_BOT_{j}"] = BOTS_TOKENS[j]
        settings = Settings(
            data_dir=tmp,
            database=DatabaseSettings(url=db_url),
            telegram=TelegramSettings(
                base_url=fake.bot_api_url,
                base_file_url=fake.file_api_url,
                poll_timeout=10,
                bots=extra,
            ),
            http=HttpSettings(port=0),
            telegram_token=SecretStr(DEFAULT_TOKEN),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        me = BOTS_COORDINATOR

        async def step(want: Callable[[Any], bool]) -> Any:
            return await fake.wait_for_message(me, predicate=want, timeout=60)

        def press_data(message: Any, data: str) -> None:
            fake.press_button(me, me, message.message_id, data)

        fake.send_text(me, me, "/umumkan")
        areas = await step(lambda m: bool(m.buttons()))
        label = next(b for b in areas.buttons() if b["text"] == "Kampung Melayu")
        press_data(areas, label["callback_data"])
        press_data(await step(lambda m: "bc:aud:residents" in m.button_data()), "bc:aud:residents")
        await step(lambda m: True)
        fake.send_text(me, me, "Kerja bakti Minggu pagi pukul 07.00 di balai RW")
        preview = await step(lambda m: "bc:send" in m.button_data())
        assert f"{recipients} penerima" in preview.content, preview.content
        await asyncio.sleep(1.5)  # a person reads the preview; the clicks' replies leave the
        # bot's 30/s window, which the dispatcher (SQLite, one process) does not see
        cursor = fake.mark()
        arrived: list[float] = []

        def all_arrived() -> bool:
            nonlocal cursor
            while cursor < len(fake.events):
                event = fake.events[cursor]
                cursor += 1
                if event.type == "message" and event.chat_id in residents:
                    arrived.append(fake.clock())
            return len(arrived) >= recipients

        before_429 = fake.count_429
        started = fake.clock()
        press_data(preview, "bc:send")
        await fake.wait_for(all_arrived, timeout=recipients / 30 * 2 + 60)
        elapsed = max(arrived) - started
        stop.set()
        await task
        for j in range(1, bots):
            del os.environ[f"KTN_BENCH_BOT_{j}"]
        per_bot = [sum(1 for uid in residents if b.sent.get(uid)) for b in fake_bots]
        if sum(per_bot) != recipients:
            raise RuntimeError(f"residents reached {per_bot}, expected {recipients} in all")
        return recipients / elapsed, fake.count_429 - before_429


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=900)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rates: dict[int, list[float]] = {1: [], 3: []}
        errors: dict[int, int] = {1: 0, 3: 0}
        for _ in range(args.runs):
            for bots in (1, 3):
                rate, n429 = await multi_bot_broadcast(bots, args.recipients, tmp)
                rates[bots].append(rate)
                errors[bots] += n429
        one, three = statistics.median(rates[1]), statistics.median(rates[3])
        print(
            f"Bots: broadcast to {args.recipients} residents of 3 villages at 30 msg/s per bot: "
            f"1 token {one:.1f} msg/s ({errors[1]} x 429), 3 tokens {three:.1f} msg/s "
            f"({errors[3]} x 429), ratio {three / one:.2f} (median of {args.runs})"
        )


if __name__ == "__main__":
    asyncio.run(main())
