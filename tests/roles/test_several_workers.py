"""Scale-out on PostgreSQL: three real `ktn-bot run` worker processes in webhook mode behind a
round-robin proxy, against the fake Bot API with Telegram's limits.

200 residents file reports at once: every alert is sent exactly once and the deployment as a
whole never gets a 429. Then the scheduler's leader is killed (SIGKILL) while escalations fall
due: another worker takes over and every escalation goes out exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from bot.web.serving import serve_asgi
from storage.db import is_sqlite
from storage.models import Outbox, Report
from storage.types import utcnow
from tests.conftest import ROOT
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, link_group, load_areas
from tests.support.net import free_port
from tests.support.telegram_run import WEBHOOK_SECRET, Running, file_report

RESIDENTS = range(700_000, 700_200)
GROUP = -1001000000001  # Sumber Jaya's officers
KECAMATAN_GROUP = -1001000000002  # the parent area's group: escalations
ESCALATING = 30
TAKEOVER_SECONDS = 2
# Raised from Telegram's 30/s and 20/min (the fake's alike) so the test takes one minute, not
# five; three workers each keeping the limit alone would still send three times too much.
PER_SECOND = 100
GROUP_PER_MINUTE = 600


@dataclass
class Worker:
    """One `ktn-bot run` process on its own port."""

    port: int
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read(self) -> None:
        """Keep its log (stderr) and notice when its bot has started."""
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "started (webhook)" in line:
                self.started.set()

    async def health(self, client: httpx.AsyncClient) -> dict[str, object] | None:
        try:
            response = await client.get(f"{self.url}/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        body: dict[str, object] = response.json()
        return body


def worker_env(fake: TelegramFake, db_url: str, port: int, webhook_url: str) -> dict[str, str]:
    """A worker's settings, all from the environment (secrets included)."""
    return {
        **os.environ,
        "KTN_DATABASE__URL": db_url,
        "KTN_DATABASE__POOL_SIZE": "8",
        "KTN_HTTP__PORT": str(port),
        "KTN_TELEGRAM__MODE": "webhook",
        "KTN_TELEGRAM__WEBHOOK_URL": webhook_url,
        "KTN_TELEGRAM__BASE_URL": fake.bot_api_url,
        "KTN_TELEGRAM__BASE_FILE_URL": fake.file_api_url,
        "KTN_TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "KTN_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KTN_SCHEDULER__TAKEOVER_SECONDS": str(TAKEOVER_SECONDS),
        "KTN_REPORTS__ESCALATION_CHECK_SECONDS": "1",
        "KTN_OUTBOX__TELEGRAM_PER_SECOND": str(PER_SECOND),
        "KTN_OUTBOX__TELEGRAM_GROUP_PER_MINUTE": str(GROUP_PER_MINUTE),
    }


@contextlib.asynccontextmanager
async def round_robin(urls: list[str]) -> AsyncIterator[str]:
    """A tiny reverse proxy: each webhook POST to the next worker (skipping dead ones)."""
    ring = itertools.cycle(urls)

    async def forward(request: Request) -> Response:
        body = await request.body()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        for _ in range(len(urls)):
            try:
                answer = await client.post(
                    f"{next(ring)}/telegram/webhook", content=body, headers=headers
                )
            except httpx.TransportError:
                continue  # that worker is gone: the next one takes it
            return Response(status_code=answer.status_code)
        return Response(status_code=502)

    app = Starlette(routes=[Route("/telegram/webhook", forward, methods=["POST"])])
    async with httpx.AsyncClient(timeout=30) as client, serve_asgi(app) as base:
        yield f"{base}/telegram/webhook"


@contextlib.asynccontextmanager
async def workers(
    fake: TelegramFake, db_url: str, tmp_path: Path, count: int, **env: str
) -> AsyncIterator[list[Worker]]:
    """``count`` worker processes behind the round-robin proxy, each one's bot started."""
    config = tmp_path / "config.toml"
    config.write_text('data_dir = "data"\n', encoding="utf-8")
    ports = [free_port() for _ in range(count)]
    async with round_robin([f"http://127.0.0.1:{p}" for p in ports]) as hook:
        group: list[Worker] = []
        for port in ports:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(config),
                "run",
                cwd=ROOT,
                env={**worker_env(fake, db_url, port, hook), **env},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            worker = Worker(port, proc)
            worker.reader = asyncio.create_task(worker.read())
            group.append(worker)
        try:
            for worker in group:
                await asyncio.wait_for(worker.started.wait(), timeout=30)
            yield group
        finally:
            for worker in group:
                if worker.proc.returncode is None:
                    worker.proc.send_signal(signal.SIGTERM)
            for worker in group:
                try:
                    await asyncio.wait_for(worker.proc.wait(), timeout=30)
                    if worker.reader is not None:
                        await worker.reader
                finally:
                    log = tmp_path / f"worker-{worker.port}.log"  # kept by pytest for a failure
                    log.write_text("".join(worker.lines), encoding="utf-8")


async def the_leader(group: list[Worker], client: httpx.AsyncClient) -> Worker:
    """The one worker whose /healthz says it leads (waiting while nobody does yet)."""
    for _ in range(200):
        leaders = []
        for worker in group:
            body = await worker.health(client)
            if body is not None and body.get("leader") is True:
                leaders.append(worker)
        assert len(leaders) <= 1, "two leaders at once"
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.1)  # an HTTP endpoint to look at again: nothing to await
    raise AssertionError("no worker became the leader")


async def updates_handled(worker: Worker, client: httpx.AsyncClient) -> float:
    """The worker's ktn_updates_total (result ok), from its /metrics."""
    text = (await client.get(f"{worker.url}/metrics", timeout=5)).text
    found = re.search(r'^ktn_updates_total\{channel="telegram",result="ok"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def prepare(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Sample areas; Sumber Jaya's group and its kecamatan's group linked."""
    await load_areas(sessions)
    await link_group(sessions, SUMBER_JAYA, GROUP, "Desa")
    await link_group(sessions, KAMPUNG_MELAYU, KECAMATAN_GROUP, "Kec")


def tickets_in(fake: TelegramFake, chat_id: int) -> Counter[str]:
    """How many messages in the chat name each ticket."""
    found: Counter[str] = Counter()
    for message in fake.messages(chat_id):
        found.update(set(re.findall(r"KTN-[0-9A-Z-]+", message.content)))
    return found


async def test_three_workers_share_the_load_and_the_leader_fails_over(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    if is_sqlite(migrated_url):
        pytest.skip("several workers share one PostgreSQL database (runs in the PG pass)")
    await prepare(sessions)
    limits = FloodLimits(
        per_bot=((PER_SECOND, 1.0),),
        per_group=((GROUP_PER_MINUTE, 60.0),),
        per_private=((3, 1.0),),
    )
    async with TelegramFake(flood_limits=limits) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_group(KECAMATAN_GROUP, "Polsek", kind="supergroup")
        for user in RESIDENTS:
            fake.add_user(user, "Warga", str(user))
        async with workers(fake, migrated_url, tmp_path, 3) as group, httpx.AsyncClient() as client:
            running = Running(
                fake, sessions, asyncio.Event(), asyncio.create_task(asyncio.sleep(0))
            )
            await asyncio.gather(*(file_report(running, u, timeout=120) for u in RESIDENTS))

            async with sessions() as s:
                tickets = set((await s.execute(select(Report.ticket))).scalars())
            assert len(tickets) == len(RESIDENTS)
            await fake.wait_for(lambda: len(tickets_in(fake, GROUP)) >= len(tickets), timeout=90)
            for worker in group:  # the proxy spread the residents' updates over all three
                assert await updates_handled(worker, client) > 0

            # Escalations fall due over the next seconds; the leader dies after the first one.
            leader = await the_leader(group, client)
            async with sessions() as s:
                ids = (await s.execute(select(Report.id).limit(ESCALATING))).scalars().all()
                soon = utcnow() + timedelta(seconds=1)
                for i, report_id in enumerate(ids):
                    await s.execute(
                        update(Report)
                        .where(Report.id == report_id)
                        .values(escalate_at=soon + timedelta(seconds=0.1 * i))
                    )
                await s.commit()
            await fake.wait_for_message(KECAMATAN_GROUP, contains="KTN-", since=0, timeout=30)
            leader.proc.kill()
            await leader.proc.wait()
            survivors = [w for w in group if w is not leader]
            new_leader = await the_leader(survivors, client)
            assert new_leader is not leader
            await fake.wait_for(
                lambda: len(tickets_in(fake, KECAMATAN_GROUP)) >= ESCALATING, timeout=60
            )

        # all workers stopped: everything they sent is recorded, nothing is left to send
        alerts = tickets_in(fake, GROUP)
        assert set(alerts) == tickets and set(alerts.values()) == {1}  # each alert exactly once
        escalated = tickets_in(fake, KECAMATAN_GROUP)
        assert len(escalated) == ESCALATING and set(escalated.values()) == {1}
        assert fake.count_429 == 0  # the deployment as a whole stayed within every limit

    async with sessions() as s:
        kinds = Counter(
            (r.kind, r.status) for r in (await s.execute(select(Outbox.kind, Outbox.status))).all()
        )
    assert kinds[("escalation", "sent")] == ESCALATING
    assert kinds[("alert", "sent")] == len(RESIDENTS)
