"""ktn-bot benchmarks: figures and same-run ratios, printed one line per figure.

    .venv/bin/python bench/bench.py            # quick: P1, P2, P3 (about a minute)
    .venv/bin/python bench/bench.py --full     # the issue's sizes (10,000-recipient broadcast)

Everything runs on this machine against the test suite's fake Bot API over real HTTP on
127.0.0.1. Each figure is the median of ``--runs`` runs; each ratio compares two things measured
in the same run of this script.

- P1 inbound throughput: N simulated residents complete a report at once through the real bot
  process (SQLite WAL), each waiting for the bot's answer before the next step (updates/s), and
  the same N users talking to a bare python-telegram-bot echo bot: the ratio ktn/echo.
- P2 alert latency: from pressing "Kirim" to the group alert arriving at the fake (p50/p95/p99).
- P3 broadcast: outbox rows to R private chats with Telegram's 30 msg/s limit (achieved/limit,
  429s), and with the limit lifted, the dispatcher's own ceiling (msg/s).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from telegram import Bot, Update  # noqa: E402
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters  # noqa: E402

from bot.app import run  # noqa: E402
from bot.config import DatabaseSettings, HttpSettings, Settings, TelegramSettings  # noqa: E402
from bot.outbox import ChannelLimits, Dispatcher  # noqa: E402
from bot.telegram import PerUserProcessor, TelegramSender  # noqa: E402
from bot.telegram_fake import DEFAULT_TOKEN, TelegramFake  # noqa: E402
from handlers.testing import SUMBER_JAYA, load_areas  # noqa: E402
from handlers.types import Reply  # noqa: E402
from storage import migrate  # noqa: E402
from storage.areas import get_by_code  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import GroupChat, Outbox  # noqa: E402

GROUP = -1009000000001
JSON = dict[str, Any]


class Chats:
    """Bot messages per chat, fed from the fake's event stream (one reader, many waiters)."""

    def __init__(self, fake: TelegramFake) -> None:
        self.fake = fake
        self.queues: dict[int, asyncio.Queue[tuple[float, JSON]]] = defaultdict(asyncio.Queue)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        after = self.fake.mark()
        while True:
            events = await self.fake.wait_events(after, 30)
            for event in events:
                if event.type == "message" and event.chat_id is not None:
                    self.queues[event.chat_id].put_nowait((time.perf_counter(), event.data))
            if events:
                after = events[-1].id

    async def next(self, chat_id: int, want: Callable[[JSON], bool] = lambda m: True) -> JSON:
        """The next bot message in the chat that satisfies ``want``."""
        while True:
            _, message = await asyncio.wait_for(self.queues[chat_id].get(), 10)
            if want(message):
                return message

    async def close(self) -> None:
        self._task.cancel()


def buttons(message: JSON) -> list[JSON]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b for row in rows for b in row]


def text_of(message: JSON) -> str:
    return str(message.get("text") or message.get("caption") or "")


def press(fake: TelegramFake, user: int, message: JSON, label: str) -> None:
    for b in buttons(message):
        if b["text"] == label:
            fake.press_button(user, user, message["message_id"], b["callback_data"])
            return
    raise RuntimeError(f"no button {label!r} in {text_of(message)[:60]!r}")


async def resident(fake: TelegramFake, chats: Chats, user: int, sent_at: dict[int, float]) -> int:
    """One resident files a report; returns how many updates they sent."""
    has_buttons = lambda m: bool(buttons(m))  # noqa: E731
    fake.start(user, payload=SUMBER_JAYA)
    press(fake, user, await chats.next(user, has_buttons), "Setuju")
    await chats.next(user)
    fake.send_text(user, user, "/lapor")
    press(fake, user, await chats.next(user, has_buttons), "Keamanan")
    asked = await chats.next(user)
    if any(b["text"] == "Buat laporan baru" for b in buttons(asked)):  # the duplicate hint
        press(fake, user, asked, "Buat laporan baru")
        await chats.next(user)
    fake.send_text(user, user, f"Ada pencurian sandal di masjid, warga {user}")
    await chats.next(user)
    fake.send_location(user, user, -3.7956, 102.2592)
    press(fake, user, await chats.next(user, has_buttons), "Lewati")
    press(fake, user, await chats.next(user, has_buttons), "Tidak")
    summary = await chats.next(user, lambda m: any(b["text"] == "Kirim" for b in buttons(m)))
    sent_at[user] = time.perf_counter()
    press(fake, user, summary, "Kirim")
    await chats.next(user, lambda m: "KTN-" in text_of(m))
    return 8 + int(bool(buttons(asked)))


async def echo_user(fake: TelegramFake, chats: Chats, user: int) -> int:
    """The same number of updates against an echo bot."""
    fake.start(user)
    await chats.next(user)
    for i in range(7):
        fake.send_text(user, user, f"pesan {i}")
        await chats.next(user)
    return 8


async def timed(users: list[int], one: Callable[[int], Awaitable[int]]) -> float:
    """Updates per second for all users at once."""
    started = time.perf_counter()
    counts = await asyncio.gather(*(one(u) for u in users))
    return sum(counts) / (time.perf_counter() - started)


async def echo_rate(users: list[int]) -> float:
    """P1 baseline: a bare PTB echo bot (concurrent per user, like ktn-bot) on the same fake."""
    async with TelegramFake(flood=False) as fake:
        app = (
            ApplicationBuilder()
            .token(DEFAULT_TOKEN)
            .base_url(fake.bot_api_url)
            .concurrent_updates(PerUserProcessor(256))
            .build()
        )

        async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_message is not None
            await update.effective_message.reply_text(update.effective_message.text or "?")

        app.add_handler(MessageHandler(filters.TEXT, echo))
        chats = Chats(fake)
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=10)
            rate = await timed(users, lambda u: echo_user(fake, chats, u))
            await app.updater.stop()
            await app.stop()
        await chats.close()
        return rate


async def ktn_rate(users: list[int], db_url: str, data: Path) -> tuple[float, list[float]]:
    """P1/P2: the real bot process; returns updates/s and Kirim -> group alert latencies (ms)."""
    async with TelegramFake(flood=False) as fake:
        fake.add_group(GROUP, "Bhabin", kind="supergroup")
        settings = Settings(
            data_dir=data,
            database=DatabaseSettings(url=db_url),
            telegram=TelegramSettings(
                base_url=fake.bot_api_url, base_file_url=fake.file_api_url, poll_timeout=10
            ),
            http=HttpSettings(port=0),
            telegram_token=SecretStr(DEFAULT_TOKEN),
        )
        settings.outbox.telegram_per_second = 10_000
        settings.outbox.telegram_group_per_minute = 1_000_000
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        chats = Chats(fake)
        alert_at: dict[int, float] = {}
        sent_at: dict[int, float] = {}

        async def watch_group() -> None:
            while True:
                message = await chats.next(GROUP)
                for user in sent_at:
                    if f"warga {user}" in text_of(message):
                        alert_at[user] = time.perf_counter()
                if len(alert_at) == len(users):
                    all_alerts.set()

        all_alerts = asyncio.Event()
        watcher = asyncio.create_task(watch_group())
        fake.start(1)  # wait until the bot polls
        await chats.next(1)
        rate = await timed(users, lambda u: resident(fake, chats, u, sent_at))
        await asyncio.wait_for(all_alerts.wait(), 60)  # the alerts trail the confirmations
        watcher.cancel()
        stop.set()
        await task
        await chats.close()
        return rate, [(alert_at[u] - sent_at[u]) * 1000 for u in users]


async def prepared_db(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await load_areas(sessions)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(GroupChat(channel="telegram", chat_id=GROUP, area_id=area.id, title="Bhabin"))
        await s.commit()
    await engine.dispose()
    return url


async def broadcast(recipients: int, limits: ChannelLimits | None, tmp: Path) -> tuple[float, int]:
    """P3: msg/s for a broadcast to ``recipients`` private chats, and the 429s it caused."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'p3-{recipients}-{bool(limits)}.db'}")
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as s:
        payload = {"reply": Reply("Pengumuman: kerja bakti Minggu pagi pukul 07.00").to_json()}
        s.add_all(
            Outbox(channel="telegram", chat_id=10_000 + i, kind="broadcast", payload=payload)
            for i in range(recipients)
        )
        await s.commit()
    async with TelegramFake(flood=limits is not None) as fake:
        for i in range(recipients):
            fake.start(10_000 + i)
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
            dispatcher = Dispatcher(
                sessions,
                {"telegram": TelegramSender(bot)},
                {"telegram": limits} if limits else {},
                batch_size=1000,
                concurrency=64,
            )
            started = time.perf_counter()
            await dispatcher.drain()
            elapsed = time.perf_counter() - started
        count_429 = fake.count_429
    await engine.dispose()
    return recipients / elapsed, count_429


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    users = [100_000 + i for i in range(args.residents)]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        echo, ktn, latencies = [], [], []
        for i in range(args.runs):
            echo.append(await echo_rate(users))
            rate, lat = await ktn_rate(users, await prepared_db(tmp / f"p1-{i}.db"), tmp)
            ktn.append(rate)
            latencies.extend(lat)
        e, k = statistics.median(echo), statistics.median(ktn)
        print(
            f"P1 echo bot: {e:.0f} updates/s "
            f"({args.residents} users at once, median of {args.runs})"
        )
        print(f"P1 ktn-bot: {k:.0f} updates/s, ratio to echo {k / e:.2f} (target >= 0.6)")
        print(
            f"P2 alert latency: p50 {pct(latencies, 50):.0f} ms, "
            f"p95 {pct(latencies, 95):.0f} ms, "
            f"p99 {pct(latencies, 99):.0f} ms (target p95 <= 100 ms; measured with "
            f"{args.residents} residents submitting at once, not idle)"
        )

        recipients = 10_000 if args.full else 600
        limited = [
            await broadcast(recipients, ChannelLimits.rates(30, 20, 1), tmp) for _ in range(1)
        ]
        rate, n429 = limited[0]
        print(
            f"P3 broadcast {recipients} recipients at 30 msg/s: {rate:.1f} msg/s, "
            f"ratio to limit {rate / 30:.3f} (target >= 0.97), 429s: {n429}"
        )
        ceiling = [
            (await broadcast(recipients * (4 if not args.full else 1), None, tmp))[0]
            for _ in range(args.runs)
        ]
        print(
            f"P3 dispatcher ceiling (no limit): {statistics.median(ceiling):.0f} msg/s "
            f"(target >= 2000)"
        )


if __name__ == "__main__":
    asyncio.run(main())
