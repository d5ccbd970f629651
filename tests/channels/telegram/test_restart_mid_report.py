"""A real `ktn-bot run` process killed with SIGKILL: nothing a resident did is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SchedulerSettings
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from handlers.types import Reply
from storage.models import Outbox, Report
from storage.types import OutboxStatus, utcnow
from tests.conftest import ROOT
from tests.support.chats import FakeChat, core_config
from tests.support.telegram_run import (
    GROUP,
    RESIDENT,
    Running,
    bot_running,
    lenient_private_chats,
    link_alert_group,
    settings_for,
)

READY = "telegram bot @"


@asynccontextmanager
async def bot_process(cfg: Path, db_url: str) -> AsyncIterator[subprocess.Popen[str]]:
    """`python -m bot run` until the block ends (or the test kills it)."""
    env = {**os.environ, "KTN_TELEGRAM_TOKEN": DEFAULT_TOKEN, "KTN_DATABASE__URL": db_url}
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "bot", "--config", str(cfg), "run"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if READY in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        # The fake Bot API lives in this event loop: never block it while the bot talks to it.
        assert await asyncio.to_thread(ready.wait, 30), "".join(seen)
        assert proc.poll() is None, "".join(seen)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 20)
        assert proc.stderr is not None
        proc.stderr.close()


async def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 10)


async def test_killed_mid_report_resumes_and_delivers_committed_alerts(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await link_alert_group(sessions)
    async with TelegramFake(flood_limits=FloodLimits(per_private=((3, 1.0),))) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[telegram]\nbase_url = "{fake.bot_api_url}"\nbase_file_url = "{fake.file_api_url}"\n'
            "poll_timeout = 1\n[http]\nport = 0\n[outbox]\nsweep_seconds = 0.5\n"
        )
        helper = Running(fake, sessions, None, None)  # type: ignore[arg-type]

        async with bot_process(cfg, migrated_url) as proc:
            fake.start(RESIDENT, payload="17.71.08.1004")
            await fake.wait_for_message(RESIDENT, contains="27 Tahun 2022", timeout=10)
            await helper.press(RESIDENT, RESIDENT, "Setuju")
            await fake.wait_for_message(RESIDENT, contains="Sumber Jaya")
            fake.send_text(RESIDENT, RESIDENT, "/lapor")
            await fake.wait_for_message(RESIDENT, predicate=lambda m: bool(m.buttons()))
            await helper.press(RESIDENT, RESIDENT, "Keamanan")
            await fake.wait_for_message(RESIDENT)
            fake.send_text(RESIDENT, RESIDENT, "Pagar balai desa dirusak orang")
            await fake.wait_for_message(RESIDENT, contains="Di mana")
            await kill(proc)

        # While the bot is down, another resident's report is committed (as "Kirim" does).
        other = FakeChat(sessions, config=core_config(), user_id=777, name="Rahmat", now=utcnow())
        await other.onboard()
        submitted = await other.file_report(description="Lampu jalan mati satu gang")
        waiting_ticket = submitted.recorded.filed["ticket"]

        async with bot_process(cfg, migrated_url):
            await fake.wait_for_message(GROUP, contains=waiting_ticket, since=0, timeout=15)
            fake.send_text(RESIDENT, RESIDENT, "RT 03/RW 02 dekat balai desa")  # resumes at "where"
            await fake.wait_for_message(RESIDENT, contains="foto", timeout=10)
            await helper.press(RESIDENT, RESIDENT, "Lewati")
            await fake.wait_for_message(RESIDENT, predicate=lambda m: bool(m.buttons()))
            await helper.press(RESIDENT, RESIDENT, "Tidak")
            await fake.wait_for_message(RESIDENT, predicate=lambda m: "sum:send" in m.button_data())
            await helper.press(RESIDENT, RESIDENT, "Kirim")
            await fake.wait_for_message(RESIDENT, contains="KTN-")
            async with sessions() as s:
                mine = await s.scalar(select(Report).where(Report.description.like("Pagar%")))
                assert mine is not None
            await fake.wait_for_message(GROUP, contains=mine.ticket, since=0, timeout=15)

        group_texts = [m.content for m in fake.messages(GROUP)]
        assert sum(waiting_ticket in t for t in group_texts) == 1
        assert sum(mine.ticket in t for t in group_texts) == 1


async def test_an_alert_a_killed_process_had_claimed_goes_out_at_the_next_start(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Killed between claiming a row and recording its send: the next process sends it at once,
    not when the dead claim's two-minute lease runs out (PostgreSQL: after takeover_seconds)."""
    await link_alert_group(sessions)
    async with sessions() as s:
        s.add(
            Outbox(
                channel="telegram",
                chat_id=GROUP,
                kind="alert",
                payload={"reply": Reply("Laporan KTN-DEAD01 menunggu").to_json()},
                status=OutboxStatus.SENDING,
                lease_until=utcnow() + timedelta(minutes=2),
                claimed_by="a-dead-one",
            )
        )
        await s.commit()
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        settings = settings_for(fake, migrated_url, tmp_path).model_copy(
            update={"scheduler": SchedulerSettings(takeover_seconds=1)}
        )
        async with bot_running(fake, settings, sessions):
            await fake.wait_for_message(GROUP, contains="KTN-DEAD01", since=0, timeout=10)
    assert [m.content for m in fake.messages(GROUP)] == ["Laporan KTN-DEAD01 menunggu"]
