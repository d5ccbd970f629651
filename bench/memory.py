"""P5 memory: the bot process's resident set, idle and with many conversations in progress.

The bot runs as its own process (``python -m bot run``, SQLite) against the fake Bot API served
from this process; its RSS is read from /proc (VmRSS now, VmHWM the peak so far).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness import Chats, bot_process, buttons, prepared_db, press

from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from tests.support.chats import SUMBER_JAYA

ROOT = Path(__file__).resolve().parent.parent
READY = "telegram bot @"
AT_ONCE = 64


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def start_conversation(fake: TelegramFake, chats: Chats, user: int) -> None:
    """A resident agrees, starts /lapor, picks a category and leaves it there (a draft)."""
    fake.start(user, payload=SUMBER_JAYA)
    press(fake, user, await chats.next(user, lambda m: bool(buttons(m))), "Setuju")
    await chats.next(user)
    fake.send_text(user, user, "/lapor")
    press(fake, user, await chats.next(user, lambda m: bool(buttons(m))), "Keamanan")
    await chats.next(user)


async def measure(conversations: int, tmp: Path) -> tuple[float, float, float, float]:
    """The bot's RSS idle, and now and at its peak after ``conversations`` drafts are in
    progress (MB), and the seconds those took."""
    db_url = await prepared_db(tmp / "p5.db")
    async with TelegramFake(flood=False) as fake:
        cfg = tmp / "p5.toml"
        cfg.write_text(
            f'[telegram]\nbase_url = "{fake.bot_api_url}"\n'
            f'base_file_url = "{fake.file_api_url}"\npoll_timeout = 5\n[http]\nport = 0\n'
            "[outbox]\ntelegram_per_second = 10000\ntelegram_group_per_minute = 1000000\n"
        )
        env = {"KTN_TELEGRAM_TOKEN": DEFAULT_TOKEN, "KTN_DATABASE__URL": db_url}
        async with bot_process(["-m", "bot", "--config", str(cfg), "run"], env) as pid:
            chats = Chats(fake)
            fake.start(1)
            await chats.next(1)
            idle, _ = rss_mb(pid)
            started = time.perf_counter()
            users = iter(range(200_000, 200_000 + conversations))

            async def worker() -> None:
                for user in users:
                    await start_conversation(fake, chats, user)

            await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
            took = time.perf_counter() - started
            now, peak = rss_mb(pid)
            await chats.close()
    return idle, now, peak, took


async def p5(conversations: int, tmp: Path) -> None:
    """Print the bot's RSS idle and after ``conversations`` drafts are in progress."""
    idle, now, peak, took = await measure(conversations, tmp)
    print(f"P5 memory idle: {idle:.0f} MB RSS (target <= 100 MB)")
    print(
        f"P5 memory with {conversations} conversations in progress: {now:.0f} MB RSS, "
        f"peak {peak:.0f} MB (target <= 150 MB); {conversations * 4} updates in {took:.0f} s"
    )
