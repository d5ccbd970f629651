"""ktn-bot benchmarks: figures and same-run ratios, printed one line per figure.

    .venv/bin/python bench/bench.py            # quick: P1, P2, P3 (about a minute)
    .venv/bin/python bench/bench.py --full     # the issue's sizes (10,000-recipient broadcast)

Everything runs on this machine against the test suite's fake Bot API over real HTTP on
127.0.0.1. Each figure is the median of ``--runs`` runs; each ratio compares two things measured
in the same run of this script.

- P1 inbound throughput: N simulated residents complete a report at once through the real bot
  process (SQLite WAL), each waiting for the bot's answer before the next step (updates/s), and
  the same N users talking to a python-telegram-bot echo bot: bare (PTB's defaults, the issue's
  baseline) and tuned (ktn-bot's transport, loop and processor); the ratios ktn/echo. Every bot
  serves a few users first, untimed.
- P2 alert latency: from pressing "Kirim" to the group alert arriving at the fake (p50/p95/p99).
- P3 broadcast: outbox rows to R private chats with Telegram's 30 msg/s limit (achieved/limit,
  429s), and with the limit lifted, the dispatcher's own ceiling (claim, schedule, record; an
  instant sender) and the end-to-end rate through python-telegram-bot over HTTP to the fake
  running in its own process (msg/s).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import memory  # noqa: E402  (bench/memory.py, beside this script: P5)
from harness import (  # noqa: E402  (bench/harness.py)
    GROUP,
    VILLAGES,
    Chats,
    bot_process,
    buttons,
    prepared_db,
    press,
    text_of,
)
from sqlalchemy import insert  # noqa: E402
from telegram import Bot  # noqa: E402

from bot.channels.telegram.channel import send_request  # noqa: E402
from bot.channels.telegram.sender import TelegramSender  # noqa: E402
from bot.delivery.dispatcher import Dispatcher, Envelope  # noqa: E402
from bot.delivery.windows import ChannelLimits  # noqa: E402
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake  # noqa: E402
from handlers.types import Reply  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import Outbox  # noqa: E402
from tests.support.chats import SUMBER_JAYA  # noqa: E402

# Users served before a P1 rate is timed, by every bot alike: the steady state is measured, not
# a process's first statements and connections.
WARM_UP = 10


class Pacer:
    """Spaces actions to at most ``per_second`` across every task that awaits it."""

    def __init__(self, per_second: float) -> None:
        self.gap = 1 / per_second
        self.next = time.perf_counter()
        self.count = 0  # updates let through

    async def __call__(self) -> None:
        self.count += 1
        now = time.perf_counter()
        self.next = max(self.next + self.gap, now)
        if self.next > now:
            await asyncio.sleep(self.next - now)


async def _no_pace() -> None:
    return None


async def resident(
    fake: TelegramFake,
    chats: Chats,
    user: int,
    sent_at: dict[int, float],
    pace: Callable[[], Awaitable[None]] = _no_pace,
    area: str = SUMBER_JAYA,
) -> int:
    """One resident files a report; returns how many updates they sent."""
    has_buttons = lambda m: bool(buttons(m))  # noqa: E731
    await pace()
    fake.start(user, payload=area)
    message = await chats.next(user, has_buttons)
    await pace()
    press(fake, user, message, "Setuju")
    await chats.next(user)
    await pace()
    fake.send_text(user, user, "/lapor")
    message = await chats.next(user, has_buttons)
    await pace()
    press(fake, user, message, "Keamanan")
    asked = await chats.next(user)
    if any(b["text"] == "Buat laporan baru" for b in buttons(asked)):  # the duplicate hint
        await pace()
        press(fake, user, asked, "Buat laporan baru")
        await chats.next(user)
    await pace()
    fake.send_text(user, user, f"Ada pencurian sandal di masjid, warga {user}")
    await chats.next(user)
    await pace()
    fake.send_location(user, user, -3.7956, 102.2592)
    message = await chats.next(user, has_buttons)
    await pace()
    press(fake, user, message, "Lewati")
    message = await chats.next(user, has_buttons)
    await pace()
    press(fake, user, message, "Tidak")
    summary = await chats.next(user, lambda m: any(b["text"] == "Kirim" for b in buttons(m)))
    await pace()
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


async def timed(users: list[int], one: Callable[[int], Awaitable[int]]) -> tuple[float, int]:
    """Updates per second for all users at once, and how many updates they sent."""
    started = time.perf_counter()
    counts = await asyncio.gather(*(one(u) for u in users))
    return sum(counts) / (time.perf_counter() - started), sum(counts)


def bot_api_calls(fake: TelegramFake) -> int:
    """Bot API calls the bot made so far, polling (getUpdates) left out."""
    counts = fake.call_counts
    return sum(n for name, n in counts.items() if name != "getUpdates" and "/" not in name)


async def echo_rate(users: list[int], *, tuned: bool = False) -> tuple[float, float]:
    """P1 baseline: a PTB echo bot in its own process (bench/echo_bot.py), same fake, bare or
    tuned like ktn-bot; updates/s and API calls per update."""
    async with TelegramFake(flood=False) as fake:
        chats = Chats(fake)
        script = [str(ROOT / "bench" / "echo_bot.py"), fake.bot_api_url, *["--tuned"] * tuned]
        async with bot_process(script, {}):
            fake.send_text(1, 1, "siap?")  # wait until it polls
            await chats.next(1)
            await timed([1000 + u for u in range(WARM_UP)], lambda u: echo_user(fake, chats, u))
            calls = bot_api_calls(fake)
            rate, updates = await timed(users, lambda u: echo_user(fake, chats, u))
            calls = bot_api_calls(fake) - calls
        await chats.close()
        return rate, calls / updates


class RunningBot:
    """The real bot (`bot.app.run`) in this process against the fake Bot API, with the alert
    group watched: P1 rates and P2 latencies are measured against one running instance."""

    def __init__(self, db_url: str, data: Path) -> None:
        self.db_url, self.data = db_url, data
        self.sent_at: dict[int, float] = {}
        self.alert_at: dict[int, float] = {}
        self._alerted: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self._next_user = 100_000

    def users(self, count: int) -> list[int]:
        """Fresh user ids (each files one report)."""
        first, self._next_user = self._next_user, self._next_user + count
        return list(range(first, first + count))

    async def __aenter__(self) -> RunningBot:
        self._fake_cm = TelegramFake(flood=False)
        self.fake = await self._fake_cm.__aenter__()
        self.fake.add_group(GROUP, "Bhabin", kind="supergroup")
        for code, group in VILLAGES:
            self.fake.add_group(group, f"Bhabin {code}", kind="supergroup")
        cfg = self.data / "bench-bot.toml"
        cfg.write_text(
            f'[telegram]\nbase_url = "{self.fake.bot_api_url}"\n'
            f'base_file_url = "{self.fake.file_api_url}"\npoll_timeout = 10\n'
            "[http]\nport = 0\n"
            "[outbox]\ntelegram_per_second = 10000\ntelegram_group_per_minute = 1000000\n"
        )
        self._process = bot_process(
            ["-m", "bot", "--config", str(cfg), "run"],
            {
                "KTN_TELEGRAM_TOKEN": DEFAULT_TOKEN,
                "KTN_DATABASE__URL": self.db_url,
            },
        )
        self.pid = await self._process.__aenter__()
        self.chats = Chats(self.fake)
        self._watcher = asyncio.create_task(self._watch_group())
        self.fake.start(1)  # wait until the bot polls
        await self.chats.next(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._watcher.cancel()
        await self._process.__aexit__(None, None, None)
        await self.chats.close()
        await self._fake_cm.__aexit__(None, None, None)

    async def _watch_group(self) -> None:
        while True:
            try:
                message = await self.chats.next(GROUP)
            except TimeoutError:
                continue  # a quiet group
            found = re.search(r"warga (\d+)", text_of(message))
            if found:
                user = int(found.group(1))
                self.alert_at.setdefault(user, time.perf_counter())
                self._alerted[user].set()

    async def report(
        self, user: int, pace: Callable[[], Awaitable[None]] = _no_pace, area: str = SUMBER_JAYA
    ) -> int:
        """One resident files a report (updates sent)."""
        return await resident(self.fake, self.chats, user, self.sent_at, pace, area)

    async def latency_ms(self, user: int) -> float:
        """Kirim -> the group alert for this user's report (waits for the alert)."""
        try:
            await asyncio.wait_for(self._alerted[user].wait(), 60)
        except TimeoutError:
            raise RuntimeError(
                f"no alert for {user} in 60 s ({len(self.alert_at)} alerts of "
                f"{len(self.sent_at)} reports seen)"
            ) from None
        return (self.alert_at[user] - self.sent_at[user]) * 1000

    async def rate(self, count: int) -> tuple[float, list[float], float]:
        """P1: ``count`` residents file reports at once: updates/s, their alert latencies, and
        the bot's API calls per update (the alerts' included)."""
        users = self.users(count)
        calls = bot_api_calls(self.fake)
        rate, updates = await timed(users, self.report)
        latencies = [await self.latency_ms(u) for u in users]
        return rate, latencies, (bot_api_calls(self.fake) - calls) / updates

    async def latencies(self, probes: int, background: float = 0) -> tuple[list[float], float]:
        """P2: ``probes`` residents one after another, optionally while other residents keep
        the bot busy at ``background`` updates/s; latencies (ms) and the background achieved."""
        stop = asyncio.Event()
        pace = Pacer(background or 1)

        async def busy(village: str) -> None:
            while not stop.is_set():
                await self.report(self.users(1)[0], pace, village)

        crowd = [
            asyncio.create_task(busy(VILLAGES[i % len(VILLAGES)][0]))
            for i in range(40 if background else 0)
        ]
        started = time.perf_counter()
        found = []
        for user in self.users(probes):
            await self.report(user)
            found.append(await self.latency_ms(user))
        achieved = pace.count / (time.perf_counter() - started)
        stop.set()
        await asyncio.gather(*crowd)
        return found, achieved


def _fake_process(conn: Connection, recipients: int, flood: bool) -> None:
    """Child process: serve a fake Bot API whose ``recipients`` users pressed Start."""

    async def serve() -> None:
        fake = TelegramFake(flood=flood)
        for i in range(recipients):
            fake.start(10_000 + i)
        async with fake.serve() as url:
            conn.send(url)
            await _readable(conn)  # not a thread blocked in recv: that slows the loop 2x
            conn.recv()
            conn.send((fake.sent_count, fake.count_429))

    asyncio.run(serve())


async def broadcast(
    recipients: int, limits: ChannelLimits | None, tmp: Path, *, null_sender: bool = False
) -> tuple[float, int, float]:
    """P3: msg/s for a broadcast to ``recipients`` private chats, the 429s it caused, and the
    CPU seconds this process spent draining (the dispatcher and, over HTTP, PTB; not the fake's).

    The fake runs in its own process (the machine's second core), as Telegram would; with
    ``null_sender`` no HTTP is made at all: the dispatcher's own claim/schedule/record cost.
    """
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'p3-{time.monotonic_ns()}.db'}")
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as s:
        payload = {"reply": Reply("Pengumuman: kerja bakti Minggu pagi pukul 07.00").to_json()}
        await s.execute(
            insert(Outbox),
            [
                {
                    "channel": "telegram",
                    "chat_id": 10_000 + i,
                    "kind": "broadcast",
                    "payload": payload,
                }
                for i in range(recipients)
            ],
        )
        await s.commit()
    limit_map = {"telegram": limits} if limits else {}
    if null_sender:
        dispatcher = Dispatcher(sessions, {"telegram": NullSender()}, limit_map, batch_size=1000)
        started, cpu = time.perf_counter(), time.process_time()
        await dispatcher.drain()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await engine.dispose()
        return recipients / elapsed, 0, cpu
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_fake_process, args=(theirs, recipients, limits is not None))
    child.start()
    try:
        url = await _recv(ours, child)
        async with Bot(DEFAULT_TOKEN, base_url=f"{url}/bot", request=send_request()) as bot:
            dispatcher = Dispatcher(
                sessions,
                {"telegram": TelegramSender(bot, sessions)},
                limit_map,
                batch_size=1000,
            )
            started, cpu = time.perf_counter(), time.process_time()
            await dispatcher.drain()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        ours.send("done")
        sent, count_429 = await _recv(ours, child)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    await engine.dispose()
    if sent != recipients:
        raise RuntimeError(f"the fake received {sent} of {recipients} messages")
    return recipients / elapsed, count_429, cpu


async def _readable(conn: Connection, timeout: float | None = None) -> bool:  # noqa: ASYNC109
    """Wait in the event loop until the pipe has something to read (False on timeout)."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(conn.fileno(), ready.set)
    try:
        await asyncio.wait_for(ready.wait(), timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(conn.fileno())
    return True


async def _recv(conn: Connection, child: multiprocessing.process.BaseProcess) -> Any:
    """The child's next message; an error instead of a hang when the child died."""
    while not await _readable(conn, 0.5):
        if not child.is_alive():
            raise RuntimeError(f"the fake's process exited with {child.exitcode}")
    return conn.recv()


class NullSender:
    """A sender that delivers instantly: what is left is the dispatcher's own work."""

    async def send(self, envelope: Envelope) -> str | None:
        await asyncio.sleep(0)
        return str(envelope.id)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def p1_p2(args: argparse.Namespace, tmp: Path) -> None:
    """P1 against the echo bot, P2 idle and loaded: medians over ``--runs`` runs."""
    echo, tuned, ktn, idle, loaded, background = [], [], [], [], [], []
    echo_calls, ktn_calls = [], []
    for i in range(args.runs):
        users = [100_000 + u for u in range(args.residents)]
        rate, calls = await echo_rate(users)
        echo.append(rate)
        echo_calls.append(calls)
        tuned.append((await echo_rate(users, tuned=True))[0])
        async with RunningBot(await prepared_db(tmp / f"p1-{i}.db"), tmp) as bot:
            await bot.rate(WARM_UP)
            rate, _, calls = await bot.rate(args.residents)
            ktn.append(rate)
            ktn_calls.append(calls)
            idle.extend((await bot.latencies(args.probes))[0])
            found, achieved = await bot.latencies(args.probes, background=args.load)
            loaded.extend(found)
            background.append(achieved)
    e, t, k = statistics.median(echo), statistics.median(tuned), statistics.median(ktn)
    print(
        f"P1 echo bot, bare PTB (its defaults: httpx, one update at a time): {e:.0f} updates/s "
        f"({args.residents} users at once, median of {args.runs})"
    )
    print(
        f"P1 echo bot, tuned (ktn-bot's aiohttp transport, uvloop, per-user concurrency): {t:.0f}"
    )
    print(
        f"P1 ktn-bot: {k:.0f} updates/s, ratio to the bare echo bot {k / e:.2f} (target >= 0.6),"
        f" to the tuned one {k / t:.2f}"
    )
    ec, kc = statistics.median(echo_calls), statistics.median(ktn_calls)
    print(
        f"P1 Bot API calls per update (getUpdates aside): echo bot {ec:.2f}, ktn-bot {kc:.2f} "
        f"(answers to button presses, replies, alerts with their pin); calls/s: echo "
        f"{e * ec:.0f}, ktn-bot {k * kc:.0f}"
    )
    print(f"P2 alert latency idle: {percentiles(idle)} (target p95 <= 100 ms)")
    print(
        f"P2 alert latency under {statistics.median(background):.0f} updates/s of other "
        f"residents' reports: {percentiles(loaded)} (target p95 <= 250 ms at 200 updates/s)"
    )


def percentiles(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.0f} ms, p95 {pct(values, 95):.0f} ms, "
        f"p99 {pct(values, 99):.0f} ms ({len(values)} reports)"
    )


async def p4(args: argparse.Namespace, tmp: Path) -> None:
    """P4: P1 and P2 on a database holding ``--reports`` reports and ``--contacts`` contacts,
    as ratios to an empty one, on SQLite and (with ``--pg``) on PostgreSQL."""
    backends = [("SQLite", None)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    for name, url in backends:
        rates: dict[str, list[float]] = {"empty": [], "grown": []}
        p95: dict[str, list[float]] = {"empty": [], "grown": []}
        for kind in ("empty", "grown"):
            size = {"contacts": args.contacts, "reports": args.reports} if kind == "grown" else {}
            db = await prepared_db(tmp / f"p4-{kind}.db", url=url, **size)
            async with RunningBot(db, tmp) as bot:
                await bot.rate(WARM_UP)
                for _ in range(args.runs):
                    rates[kind].append((await bot.rate(args.residents))[0])
                    p95[kind].append(pct((await bot.latencies(args.probes))[0], 95))
        r = {k: statistics.median(v) for k, v in rates.items()}
        q = {k: statistics.median(v) for k, v in p95.items()}
        print(
            f"P4 {name}, {args.reports} reports + {args.contacts} contacts vs empty: "
            f"P1 {r['grown']:.0f} vs {r['empty']:.0f} updates/s (slowdown "
            f"{r['empty'] / r['grown']:.2f}), P2 p95 {q['grown']:.0f} vs {q['empty']:.0f} ms "
            f"(ratio {q['grown'] / q['empty']:.2f}) (target <= 1.25)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--residents", type=int, default=50, help="P1: residents at once")
    parser.add_argument("--probes", type=int, default=30, help="P2: reports timed per run")
    parser.add_argument("--load", type=float, default=200, help="P2: background updates/s")
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--only", default="p1,p2,p3", help="which checks, e.g. p3 or p4,p5")
    parser.add_argument("--reports", type=int, default=1_000_000, help="P4 seed size")
    parser.add_argument("--contacts", type=int, default=100_000, help="P4 seed size")
    parser.add_argument("--pg", help="P4 also on this PostgreSQL URL (its schema is dropped)")
    parser.add_argument("--conversations", type=int, default=10_000, help="P5 size")
    args = parser.parse_args()
    only = set(args.only.split(","))
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if only & {"p1", "p2"}:
            await p1_p2(args, tmp)
        if "p4" in only:
            await p4(args, tmp)
        if "p5" in only:
            await memory.p5(args.conversations, tmp)
        if "p3" not in only:
            return
        recipients = 10_000 if args.full else 600
        rate, n429, _ = await broadcast(recipients, ChannelLimits.rates(30, 20, 1), tmp)
        print(
            f"P3 broadcast {recipients} recipients at 30 msg/s: {rate:.1f} msg/s, "
            f"ratio to limit {rate / 30:.3f} (target >= 0.97), 429s: {n429}"
        )
        own = [(await broadcast(10_000, None, tmp, null_sender=True))[0] for _ in range(args.runs)]
        http = [(await broadcast(3_000, None, tmp))[0] for _ in range(args.runs)]
        print(
            f"P3 dispatcher ceiling (no limit, instant sender, 10000 rows): "
            f"{statistics.median(own):.0f} msg/s (target >= 2000)"
        )
        print(
            f"P3 end to end (no limit, PTB over HTTP to the fake in its own process, 3000 rows): "
            f"{statistics.median(http):.0f} msg/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
