"""Two Telegram bots in one deployment, end to end: the real `run` against the fake Bot API.

The default bot (KTN_TELEGRAM_TOKEN) serves Sumber Jaya and everything unclaimed; bot "polda_b"
(its token in KTN_TEST_BOT_B) claims Padang Serai. Each village's officers linked their group
through their own bot, and each resident started the bot of their village's poster. A report
on bot B reaches group B through bot B and its news reach the reporter through bot B; bot A
stays silent. A coordinator's broadcast over both villages reaches every recipient through
their own bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import StartupError, run
from bot.config import BotSettings, Settings
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, SentMessage, TelegramFake
from bot.sandbox.telegram_fake.records import FakeBot
from storage.models import Contact, GroupChat, Outbox, Report
from storage.types import Role
from tests.support.chats import load_areas
from tests.support.net import free_port
from tests.support.telegram_run import (
    WEBHOOK_SECRET,
    Running,
    bot_running,
    invite_code,
    lenient_private_chats,
    settings_for,
)

AREAS = """code,name,level,parent_code,timezone
17,Bengkulu,provinsi,,Asia/Jakarta
17.71,Kota Bengkulu,kota,17,Asia/Jakarta
17.71.08,Kampung Melayu,kecamatan,17.71,Asia/Jakarta
17.71.08.1004,Sumber Jaya,kelurahan,17.71.08,Asia/Jakarta
17.71.08.1005,Padang Serai,kelurahan,17.71.08,Asia/Jakarta
"""
SUMBER_JAYA, PADANG_SERAI, KECAMATAN = "17.71.08.1004", "17.71.08.1005", "17.71.08"
TOKEN_B = "7000000002:AAFakeTelegramTokenForKtnTestsBotB00"
TOKEN_ENV_B = "KTN_TEST_BOT_B"
GROUP_A, GROUP_B = -1001000000001, -1001000000002
OFFICER_A, OFFICER_B, COORDINATOR = 601, 602, 603
RESIDENT_A, RESIDENT_B = 501, 502


@dataclass
class Deployment:
    fake: TelegramFake
    sessions: async_sessionmaker[AsyncSession]
    a: FakeBot
    b: FakeBot
    running: Running

    async def press(self, chat_id: int, user_id: int, bot: FakeBot, label: str) -> None:
        """Press the button with this label (or data) on the bot's newest message showing it."""
        for message in reversed(self.fake.messages(chat_id, bot=bot)):
            for button in message.buttons():
                if label in (button.get("text"), button.get("callback_data")):
                    self.fake.press_button(
                        chat_id, user_id, message.message_id, button["callback_data"], bot=bot
                    )
                    return
        raise AssertionError(f"no button {label!r} from @{bot.username} in chat {chat_id}")

    async def said(self, chat_id: int, bot: FakeBot, contains: str | None = None) -> SentMessage:
        return await self.fake.wait_for_message(chat_id, contains, bot=bot, timeout=10)

    async def register(self, user: int, bot: FakeBot, role: Role, area: str, name: str) -> None:
        """/daftar <invite> in a private chat with ``bot``, then accept the privacy notice."""
        self.fake.start(user, bot=bot)
        await self.said(user, bot)
        code = await invite_code(self.sessions, role, area)
        self.fake.send_text(user, user, f"/daftar {code}", bot=bot)
        await self.said(user, bot, name)
        await self.press(user, user, bot, "Setuju")
        await self.said(user, bot)

    async def link(self, group: int, officer: int, bot: FakeBot, name: str) -> None:
        self.fake.send_text(group, officer, "/hubungkan", bot=bot)
        assert name in (await self.said(group, bot)).content

    async def onboard(self, user: int, bot: FakeBot, area: str, name: str) -> None:
        """A resident scans the village's poster: /start <area> on its bot, then Setuju."""
        self.fake.start(user, payload=area, bot=bot)
        await self.said(user, bot, "27 Tahun 2022")
        await self.press(user, user, bot, "Setuju")
        await self.said(user, bot, name)

    async def report(self, user: int, bot: FakeBot) -> str:
        """/lapor ... Kirim without photo or pin; returns the confirmation."""
        fake = self.fake
        fake.send_text(user, user, "/lapor", bot=bot)
        await fake.wait_for_message(
            user, bot=bot, predicate=lambda m: "cat:keamanan" in m.button_data()
        )
        await self.press(user, user, bot, "cat:keamanan")
        await self.said(user, bot)
        fake.send_text(user, user, "Ada orang mencurigakan di pos ronda", bot=bot)
        await self.said(user, bot)
        fake.send_text(user, user, "RT 02 dekat masjid", bot=bot)
        await fake.wait_for_message(user, bot=bot, predicate=lambda m: bool(m.buttons()))
        await self.press(user, user, bot, "photo:skip")
        await fake.wait_for_message(user, bot=bot, predicate=lambda m: bool(m.buttons()))
        await self.press(user, user, bot, "anon:no")
        await fake.wait_for_message(
            user, bot=bot, predicate=lambda m: "sum:send" in m.button_data()
        )
        await self.press(user, user, bot, "sum:send")
        return (await self.said(user, bot, "KTN-")).content


def two_bot_settings(
    fake: TelegramFake, db_url: str, tmp_path: Path, port: int = 0, **telegram: Any
) -> Settings:
    """The default bot (KTN_TELEGRAM_TOKEN) plus bot "polda_b" claiming Padang Serai."""
    settings = settings_for(fake, db_url, tmp_path, port, **telegram)
    settings.telegram.bots = [
        BotSettings(key="polda_b", token_env=TOKEN_ENV_B, areas=[PADANG_SERAI])
    ]
    return settings


def new_fake() -> tuple[TelegramFake, FakeBot, FakeBot]:
    fake = TelegramFake(flood_limits=lenient_private_chats(), username="ktn_a_bot")
    a = fake.get_bot(DEFAULT_TOKEN)
    b = fake.add_bot(TOKEN_B, username="ktn_polda_b_bot")
    for user, first in [
        (OFFICER_A, "Andi"),
        (OFFICER_B, "Bayu"),
        (COORDINATOR, "Sari"),
        (RESIDENT_A, "Siti"),
        (RESIDENT_B, "Rina"),
    ]:
        fake.add_user(user, first)
    fake.add_group(GROUP_A, "Bhabin Sumber Jaya", kind="supergroup")  # both bots are members
    fake.add_group(GROUP_B, "Bhabin Padang Serai", kind="supergroup")
    return fake, a, b


@pytest.fixture
async def deployment(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Deployment]:
    monkeypatch.setenv(TOKEN_ENV_B, TOKEN_B)
    await load_areas(sessions, AREAS)
    fake, a, b = new_fake()
    async with fake:
        settings = two_bot_settings(fake, migrated_url, tmp_path)
        async with bot_running(fake, settings, sessions) as running:
            yield Deployment(fake, sessions, a, b, running)


def chats_of(bot: FakeBot) -> set[int]:
    """Every chat the bot sent anything to."""
    return {chat for chat, sent in bot.sent.items() if sent}


async def test_a_report_on_bot_b_stays_on_bot_b(deployment: Deployment) -> None:
    d, a, b = deployment, deployment.a, deployment.b
    await d.register(OFFICER_A, a, Role.OFFICER, SUMBER_JAYA, "Sumber Jaya")
    await d.link(GROUP_A, OFFICER_A, a, "Sumber Jaya")
    await d.register(OFFICER_B, b, Role.OFFICER, PADANG_SERAI, "Padang Serai")
    await d.link(GROUP_B, OFFICER_B, b, "Padang Serai")
    await d.onboard(RESIDENT_B, b, PADANG_SERAI, "Padang Serai")

    confirmation = await d.report(RESIDENT_B, b)
    async with d.sessions() as s:
        report = await s.scalar(select(Report))
    assert report is not None and report.ticket in confirmation
    alert = await d.fake.wait_for_message(GROUP_B, report.ticket, bot=b, since=0, timeout=10)
    assert alert.button_data()[0] == f"claim:{report.id}"

    d.fake.press_button(GROUP_B, OFFICER_B, alert.message_id, f"claim:{report.id}", bot=b)
    await d.fake.wait_for_edit(GROUP_B, alert.message_id, "Ditangani oleh", bot=b, timeout=10)
    news = await d.said(RESIDENT_B, b, "sedang ditangani")
    assert report.ticket in news.content and "Bayu" in news.content

    # Bot A spoke only in Sumber Jaya's chats; Padang Serai's all went through bot B.
    assert chats_of(a) == {OFFICER_A, GROUP_A}
    assert chats_of(b) == {OFFICER_B, GROUP_B, RESIDENT_B}
    async with d.sessions() as s:
        rows = (await s.scalars(select(Outbox).where(Outbox.report_id == report.id))).all()
        contact = await s.scalar(select(Contact).where(Contact.external_id == RESIDENT_B))
        group = await s.scalar(select(GroupChat).where(GroupChat.chat_id == GROUP_B))
    assert rows and {r.bot for r in rows} == {"polda_b"}
    assert contact is not None and contact.bot == "polda_b"
    assert group is not None and group.bot == "polda_b"
    # Both bots have their command menu.
    for bot in (a, b):
        assert "lapor" in {c["command"] for c in d.fake.commands_for("id", bot=bot)}


async def test_a_broadcast_over_both_villages_goes_through_each_recipients_bot(
    deployment: Deployment,
) -> None:
    d, a, b = deployment, deployment.a, deployment.b
    await d.register(OFFICER_A, a, Role.OFFICER, SUMBER_JAYA, "Sumber Jaya")
    await d.link(GROUP_A, OFFICER_A, a, "Sumber Jaya")
    await d.register(OFFICER_B, b, Role.OFFICER, PADANG_SERAI, "Padang Serai")
    await d.link(GROUP_B, OFFICER_B, b, "Padang Serai")
    await d.onboard(RESIDENT_A, a, SUMBER_JAYA, "Sumber Jaya")
    await d.onboard(RESIDENT_B, b, PADANG_SERAI, "Padang Serai")
    await d.register(COORDINATOR, a, Role.COORDINATOR, KECAMATAN, "Kampung Melayu")

    d.fake.send_text(COORDINATOR, COORDINATOR, "/umumkan", bot=a)
    await d.said(COORDINATOR, a)
    await d.press(COORDINATOR, COORDINATOR, a, "Kampung Melayu")
    await d.said(COORDINATOR, a)
    await d.press(COORDINATOR, COORDINATOR, a, "bc:aud:both")
    await d.said(COORDINATOR, a)
    d.fake.send_text(COORDINATOR, COORDINATOR, "Kerja bakti Minggu pukul 07.00", bot=a)
    preview = await d.said(COORDINATOR, a, "4 penerima")
    assert "bc:send" in preview.button_data()
    mark = d.fake.mark()
    await d.press(COORDINATOR, COORDINATOR, a, "bc:send")

    text = "Kerja bakti Minggu pukul 07.00"
    for chat, bot in [(RESIDENT_A, a), (GROUP_A, a), (RESIDENT_B, b), (GROUP_B, b)]:
        await d.fake.wait_for_message(chat, text, bot=bot, since=mark, timeout=10)
    for chat, other in [(RESIDENT_A, b), (GROUP_A, b), (RESIDENT_B, a), (GROUP_B, a)]:
        assert not [m for m in d.fake.messages(chat, bot=other) if text in m.content]
    await d.running.stop()  # the dispatcher records what it sent before the process ends
    async with d.sessions() as s:
        rows = (await s.scalars(select(Outbox).where(Outbox.kind == "broadcast"))).all()
    assert sorted((r.chat_id, r.bot, r.status) for r in rows) == sorted(
        [
            (RESIDENT_A, "default", "sent"),
            (GROUP_A, "default", "sent"),
            (RESIDENT_B, "polda_b", "sent"),
            (GROUP_B, "polda_b", "sent"),
        ]
    )


async def test_webhooks_one_path_per_bot_each_checking_the_secret(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV_B, TOKEN_B)
    await load_areas(sessions, AREAS)
    port = free_port()
    base = f"http://127.0.0.1:{port}/telegram/webhook"
    fake, a, b = new_fake()
    async with fake:
        settings = two_bot_settings(
            fake, migrated_url, tmp_path, port=port, mode="webhook", webhook_url=base
        )
        async with bot_running(fake, settings, sessions) as running:
            d = Deployment(fake, sessions, a, b, running)
            await d.onboard(RESIDENT_A, a, SUMBER_JAYA, "Sumber Jaya")
            await d.onboard(RESIDENT_B, b, PADANG_SERAI, "Padang Serai")
            assert a.webhook is not None and a.webhook.url == base
            assert b.webhook is not None and b.webhook.url == f"{base}/polda_b"
            async with httpx.AsyncClient() as client:
                body = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start"}}
                for url in (base, f"{base}/polda_b"):
                    assert (await client.post(url, json=body)).status_code == 403
                    wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
                    assert (await client.post(url, json=body, headers=wrong)).status_code == 403
                right = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                unknown = await client.post(f"{base}/polda_x", json=body, headers=right)
                assert unknown.status_code in (404, 405)
    async with sessions() as s:
        bots = dict((await s.execute(select(Contact.external_id, Contact.bot))).all())
    assert bots == {RESIDENT_A: "default", RESIDENT_B: "polda_b"}


async def test_a_missing_token_variable_or_an_unknown_token_stops_start_up_naming_the_bot(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _a, _b = new_fake()
    async with fake:
        settings = two_bot_settings(fake, migrated_url, tmp_path)
        monkeypatch.delenv(TOKEN_ENV_B, raising=False)
        with pytest.raises(StartupError) as info:
            await run(settings, asyncio.Event())
        assert str(info.value) == (
            "[[telegram.bots]] key 'polda_b': environment variable KTN_TEST_BOT_B "
            "(its token from BotFather) is not set"
        )
        monkeypatch.setenv(TOKEN_ENV_B, "7000000099:AAUnknownToTheFakeBotApi000000000000")
        with pytest.raises(StartupError) as info:
            await run(settings, asyncio.Event())
        assert f"cannot start the Telegram bot 'polda_b' via {fake.bot_api_url}" in str(info.value)
        assert "7000000099" not in str(info.value)
