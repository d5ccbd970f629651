"""A surge into one village group (issue 18): with and without the report board.

    .venv/bin/python bench/surge.py                       # 300 reports in 300 s, both runs
    .venv/bin/python bench/surge.py --reports 60 --seconds 60 --only board

300 residents of one village each file a report, one a second (a flood, an earthquake), through
the real `run` and the suite's fake Bot API over HTTP on 127.0.0.1 with Telegram's limits: 30
messages a second per bot and 20 a minute per group (the private-chat windows are lifted: the
simulated residents click through their reports instantly, and each gets only its own answers).
Every 10th report is urgent (Bencana), the others Keamanan, Kesehatan or Lainnya. For each report
the time from pressing Kirim until its ticket is visible in the group (in its own alert, or on
the board as it reads after a send or an edit) is measured; printed: p50/p95/max, how many
reports were seen, the 429s, for the run with the board (the default, 30 s) and without it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from bot.app import run  # noqa: E402
from bot.config import (  # noqa: E402
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    ReportSettings,
    Settings,
    SurgeSettings,
    TelegramSettings,
)
from bot.sandbox.telegram_fake import (  # noqa: E402
    DEFAULT_TOKEN,
    FloodLimits,
    SentMessage,
    TelegramFake,
)
from storage import migrate  # noqa: E402
from storage.areas import get_by_code  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import GroupChat  # noqa: E402
from tests.support.chats import SUMBER_JAYA, load_areas  # noqa: E402

GROUP = -1009000000001
FIRST_RESIDENT = 200_000
TICKET = re.compile(r"KTN-[A-Z0-9]{6}")
CATEGORIES = ("Keamanan", "Kesehatan", "Lainnya")


async def prepared(path: Path) -> str:
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


class Watch:
    """When each ticket first shows in the group (messages and edits, from the fake's events)."""

    def __init__(self, fake: TelegramFake) -> None:
        self.fake = fake
        self.seen: dict[str, float] = {}
        self.messages = 0
        self.edits = 0
        self.changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        after = self.fake.mark()
        while not self.fake.closed:
            events = await self.fake.wait_events(after, 30)
            for event in events:
                if event.chat_id != GROUP or event.type not in ("message", "edit"):
                    continue
                if event.type == "message":
                    self.messages += 1
                else:
                    self.edits += 1
                text = str(event.data.get("text") or event.data.get("caption") or "")
                now = time.perf_counter()
                for ticket in TICKET.findall(text):
                    self.seen.setdefault(ticket, now)
                self.changed.set()
            if events:
                after = events[-1].id

    def close(self) -> None:
        self._task.cancel()


async def resident(fake: TelegramFake, user: int, index: int, filed: dict[str, float]) -> None:
    """One resident: /start, consent, /lapor, category, story, place, no photo, Kirim."""

    async def answer(want: Callable[[SentMessage], bool] = lambda m: True) -> SentMessage:
        return await fake.wait_for_message(user, predicate=want, timeout=120)

    def press(message: SentMessage, label: str) -> None:
        for button in message.buttons():
            if button["text"] == label:
                fake.press_button(user, user, message.message_id, button["callback_data"])
                return
        raise RuntimeError(f"no button {label!r} in {message.content[:60]!r}")

    def offers(label: str) -> Callable[[SentMessage], bool]:
        return lambda m: any(b["text"] == label for b in m.buttons())

    urgent = index % 10 == 9
    category = "Bencana" if urgent else CATEGORIES[index % len(CATEGORIES)]
    fake.start(user, payload=SUMBER_JAYA)
    press(await answer(offers("Setuju")), "Setuju")
    await answer()
    fake.send_text(user, user, "/lapor")
    press(await answer(offers(category)), category)
    await answer()
    fake.send_text(user, user, f"Air masuk rumah, warga {user}")
    await answer()
    fake.send_location(user, user, -3.7956, 102.2592)
    message = await answer(lambda m: bool(m.buttons()))
    if not urgent:  # an urgent report skips the photo and anonymity questions
        press(message, "Lewati")
        press(await answer(offers("Tidak")), "Tidak")
        message = await answer(offers("Kirim"))
    started = time.perf_counter()
    press(message, "Kirim")
    found = TICKET.search((await answer(lambda m: "KTN-" in m.content)).content)
    assert found is not None
    filed[found.group(0)] = started


async def surge(board: bool, reports: int, seconds: float, tmp: Path) -> dict[str, float]:
    db_url = await prepared(tmp / f"surge-{board}-{time.monotonic_ns()}.db")
    limits = FloodLimits(per_private=((1000, 1.0),))  # 30/s per bot, 20/min per group
    async with TelegramFake(flood_limits=limits) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        users = [FIRST_RESIDENT + i for i in range(reports)]
        for user in users:
            fake.add_user(user, "Warga", str(user))
        settings = Settings(
            data_dir=tmp,
            database=DatabaseSettings(url=db_url),
            telegram=TelegramSettings(
                base_url=fake.bot_api_url, base_file_url=fake.file_api_url, poll_timeout=10
            ),
            http=HttpSettings(port=0),
            outbox=OutboxSettings(sweep_seconds=1.0),
            surge=SurgeSettings(board_after_seconds=30 if board else 0),
            reports=ReportSettings(duplicate_window_hours=0),
            telegram_token=SecretStr(DEFAULT_TOKEN),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        watch = Watch(fake)
        filed: dict[str, float] = {}
        start = time.perf_counter()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i * seconds / reports - time.perf_counter()))
            await resident(fake, users[i], i, filed)

        await asyncio.gather(*(one(i) for i in range(reports)))
        while len(watch.seen.keys() & filed.keys()) < len(filed):
            watch.changed.clear()
            await asyncio.wait_for(watch.changed.wait(), 600)
        latencies = [watch.seen[t] - filed[t] for t in filed if t in watch.seen]
        stop.set()
        await task
        watch.close()
        latencies.sort()
        return {
            "reports": len(filed),
            "seen": len(latencies),
            "p50": statistics.median(latencies),
            "p95": latencies[max(0, round(0.95 * len(latencies)) - 1)],
            "max": latencies[-1],
            "429": fake.count_429,
            "messages": watch.messages,
            "edits": watch.edits,
        }


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"{name:>13}: {int(r['seen'])}/{int(r['reports'])} reports seen in the group; "
        f"Kirim -> visible p50 {r['p50']:.1f} s, p95 {r['p95']:.1f} s, max {r['max']:.1f} s; "
        f"{int(r['429'])} x 429; {int(r['messages'])} group messages, {int(r['edits'])} edits"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--only", choices=("board", "without"), default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for board in (True, False):
            name = "with board" if board else "without board"
            if args.only and args.only != ("board" if board else "without"):
                continue
            result = await surge(board, args.reports, args.seconds, tmp)
            print(line(name, result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
