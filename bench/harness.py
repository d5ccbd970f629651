"""What the benchmark scripts share: the fake's chats, a bot in its own process, and a
prepared database (bench/bench.py's P1/P2/P4, bench/memory.py's P5).

Imported by the scripts after they put the repository on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import growth  # bench/growth.py, beside this module
from sqlalchemy import text

from bot.sandbox.telegram_fake import TelegramFake
from storage import migrate
from storage.areas import get_by_code
from storage.db import create_engine, session_factory
from storage.models import GroupChat
from tests.support.chats import SUMBER_JAYA, load_areas

ROOT = Path(__file__).resolve().parent.parent
GROUP = -1009000000001
# Other villages, each with its own alert group: the background load of P2 reports there, as a
# province's residents would (Telegram lets one group receive only 20 messages a minute).
VILLAGES = [(f"17.71.08.{9001 + i}", -1009000001000 - i) for i in range(20)]
VILLAGES_CSV = "code,name,level,parent_code,timezone\n" + "".join(
    f"{code},Desa Uji {i},kelurahan,17.71.08,Asia/Jakarta\n" for i, (code, _) in enumerate(VILLAGES)
)
JSON = dict[str, Any]


class Chats:
    """Bot messages per chat, fed from the fake's event stream (one reader, many waiters)."""

    def __init__(self, fake: TelegramFake) -> None:
        self.fake = fake
        self.queues: dict[int, asyncio.Queue[tuple[float, JSON]]] = defaultdict(asyncio.Queue)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        after = self.fake.mark()
        while not self.fake.closed:
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


@asynccontextmanager
async def bot_process(args: list[str], env: dict[str, str]) -> AsyncIterator[int]:
    """A bot as its own process (as in production: Telegram is not in the bot's process) until
    the block ends; yields its pid. Ready when it logs "telegram bot @"."""
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "telegram bot @" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not await asyncio.to_thread(ready.wait, 60) or proc.poll() is not None:
            raise RuntimeError("the bot did not start:\n" + "".join(seen[-20:]))
        yield proc.pid
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def prepared_db(
    path: Path, *, url: str | None = None, contacts: int = 0, reports: int = 0
) -> str:
    """A migrated database with the sample areas and the alert group: an SQLite file at
    ``path``, or the PostgreSQL database at ``url`` wiped first; optionally seeded (P4)."""
    if url is None:
        url = f"sqlite+aiosqlite:///{path}"
    else:
        await wipe_postgres(url)
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await load_areas(sessions)
    await load_areas(sessions, VILLAGES_CSV)
    async with sessions() as s:
        for code, group in VILLAGES:
            village = await get_by_code(s, code)
            assert village is not None
            s.add(GroupChat(channel="telegram", chat_id=group, area_id=village.id, title=code))
        await s.commit()
    if contacts or reports:
        took = await growth.seed(sessions, contacts=contacts, reports=reports)
        print(f"   seeded {contacts} contacts and {reports} reports in {took:.0f} s", flush=True)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(GroupChat(channel="telegram", chat_id=GROUP, area_id=area.id, title="Bhabin"))
        await s.commit()
    await engine.dispose()
    return url


async def wipe_postgres(url: str) -> None:
    """Drop everything in the public schema of the benchmark's PostgreSQL database."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
