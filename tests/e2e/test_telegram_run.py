"""End to end on Telegram: the real bot process (PTB polling) against the fake Bot API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from storage.models import GroupChat, Outbox, Report
from tests.support.chats import SUMBER_JAYA
from tests.support.net import free_port
from tests.support.telegram_run import (
    BASIC_GROUP,
    GROUP,
    RESIDENT,
    WEBHOOK_SECRET,
    Running,
    bot_running,
    file_report,
    lenient_private_chats,
    link_alert_group,
    settings_for,
)


async def test_resident_report_reaches_the_area_group(running: Running) -> None:
    fake = running.fake
    confirmation = await file_report(running, RESIDENT)
    async with running.sessions() as s:
        report = await s.scalar(select(Report))
        assert report is not None
    assert report.ticket in confirmation
    alert = await fake.wait_for_message(GROUP, contains=report.ticket, since=0, timeout=10)
    assert "Siti Aminah" in alert.content
    assert alert.button_data() == [
        f"claim:{report.id}",
        f"resolve:{report.id}",
        f"reject:{report.id}",
        f"merge:{report.id}",
    ]
    await running.stop()  # the dispatcher records what it sent before the process ends
    async with running.sessions() as s:
        row = await s.scalar(select(Outbox).where(Outbox.kind == "alert"))
        assert row is not None and row.status == "sent" and row.external_id == str(alert.message_id)


async def test_group_upgraded_to_supergroup_keeps_getting_alerts(running: Running) -> None:
    fake = running.fake
    fake.add_group(BASIC_GROUP, "Bhabin (lama)", kind="group")
    async with running.sessions() as s:
        link = await s.scalar(select(GroupChat).where(GroupChat.chat_id == GROUP))
        assert link is not None
        link.chat_id = BASIC_GROUP
        await s.commit()
    new_id = fake.migrate_group(BASIC_GROUP)
    await file_report(running, RESIDENT)
    alert = await fake.wait_for_message(new_id, contains="KTN-", since=0, timeout=10)
    assert alert.button_data()[0].startswith("claim:")
    await running.stop()
    async with running.sessions() as s:
        assert await s.scalar(select(GroupChat.chat_id)) == new_id


async def test_unknown_command_gets_help_and_commands_are_registered(running: Running) -> None:
    fake = running.fake
    fake.start(RESIDENT)
    await fake.wait_for_message(RESIDENT)
    fake.send_text(RESIDENT, RESIDENT, "/terbang")
    help_text = await fake.wait_for_message(RESIDENT)
    assert "/lapor" in help_text.content
    names = {c["command"] for c in fake.commands_for(language_code="id")}
    assert {"lapor", "status", "batal", "darurat"} <= names
    assert "report" in {c["command"] for c in fake.commands_for(language_code="en")}


async def test_group_chats_get_the_officers_menu(running: Running) -> None:
    """In a group the "/" menu lists the officers' commands, per language (Indonesian for the
    others); the private menu stays the residents'."""
    fake = running.fake

    def menu(language_code: str, scope: str = "all_group_chats") -> list[str]:
        return [c["command"] for c in fake.commands_for(language_code, scope)]

    await fake.wait_for(lambda: menu(""))  # the last menu the bot registers as it starts
    assert menu("id") == menu("") == ["hubungkan", "laporan", "darurat", "bantuan"]
    assert menu("en") == ["link", "reports", "emergency", "help"]
    assert "Petugas" in fake.commands_for("id", "all_group_chats")[0]["description"]
    assert "hubungkan" not in menu("id", "default") and "lapor" in menu("id", "default")


async def test_dispatcher_stays_within_telegram_flood_limits(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Many chats and a busy group at once: everything arrives, in order, with no 429.

    The group window is scaled down (5 per 2 s instead of 20 per 60 s) on both sides so the
    test runs in seconds; the per-bot 30/s and per-chat 1/s limits are Telegram's own.
    """
    from telegram import Bot

    from bot.channels.telegram.sender import TelegramSender
    from bot.delivery.dispatcher import Dispatcher
    from bot.delivery.windows import ChannelLimits
    from handlers.types import Reply

    limits = FloodLimits(per_bot=((30, 1.0),), per_group=((5, 2.0),), per_private=((1, 1.0),))
    async with TelegramFake(flood_limits=limits) as fake:
        fake.add_group(GROUP, "Bhabin")
        users = range(1000, 1060)
        for uid in users:
            fake.add_user(uid, f"Warga {uid}")
            fake.start(uid)
        async with sessions() as s:
            s.add_all(
                Outbox(
                    channel="telegram",
                    chat_id=uid,
                    kind="broadcast",
                    payload={"reply": Reply(f"Pengumuman {i}").to_json()},
                )
                for uid in users
                for i in range(2)
            )
            s.add_all(
                Outbox(
                    channel="telegram",
                    chat_id=GROUP,
                    kind="alert",
                    payload={"reply": Reply(f"Alert {i}").to_json()},
                )
                for i in range(8)
            )
            await s.commit()
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
            dispatcher = Dispatcher(
                sessions,
                {"telegram": TelegramSender(bot, sessions)},
                {"telegram": ChannelLimits((30, 1.0), group_window=(5, 2.0), chat_window=(1, 1.0))},
            )
            assert await dispatcher.drain() == 128
        assert fake.count_429 == 0
        assert [m.content for m in fake.messages(GROUP)] == [f"Alert {i}" for i in range(8)]
        for uid in users:
            assert [m.content for m in fake.messages(uid)][-2:] == ["Pengumuman 0", "Pengumuman 1"]


async def test_webhook_mode_checks_the_secret_and_processes_each_update_once(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await link_alert_group(sessions)
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_user(RESIDENT, "Siti", "Aminah")
        settings = settings_for(fake, migrated_url, tmp_path, port, mode="webhook", webhook_url=url)
        async with bot_running(fake, settings, sessions):
            update_id = fake.start(RESIDENT, payload=SUMBER_JAYA)  # delivered by webhook
            await fake.wait_for_message(RESIDENT, contains="27 Tahun 2022", timeout=10)
            first_count = len(fake.messages(RESIDENT))

            async with httpx.AsyncClient() as client:
                body = {
                    "update_id": 999,
                    "message": {
                        "message_id": 1,
                        "date": 0,
                        "chat": {"id": 1, "type": "private"},
                        "text": "/start",
                    },
                }
                assert (await client.post(url, json=body)).status_code == 403
                wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
                assert (await client.post(url, json=body, headers=wrong)).status_code == 403
                right = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                bad = await client.post(url, content=b"{not json", headers=right)
                assert bad.status_code == 400

            fake.redeliver(update_id)  # Telegram retried the same update
            fake.send_text(RESIDENT, RESIDENT, "/bantuan")
            await fake.wait_for_message(RESIDENT, contains="/lapor")
            replies = [m.content for m in fake.messages(RESIDENT)]
            assert len(replies) == first_count + 1  # the redelivered /start got no second answer


async def test_a_reply_telegram_keeps_refusing_still_arrives_through_the_outbox(
    running: Running,
) -> None:
    """Three 502s in a row on the direct reply: it is queued durably and delivered."""
    fake = running.fake
    fake.fail_next("sendMessage", 502, times=3)
    fake.start(RESIDENT, payload=SUMBER_JAYA)
    welcome = await fake.wait_for_message(RESIDENT, contains="27 Tahun 2022", timeout=10)
    assert fake.fault_counts["5xx"] == 3
    assert [m.message_id for m in fake.messages(RESIDENT)] == [welcome.message_id]


async def test_a_message_the_core_cannot_process_gets_an_apology_not_silence(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.inbound

    real = bot.inbound.process
    failures = [RuntimeError("database gone for a moment")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(bot.inbound, "process", flaky)
    fake = running.fake
    fake.start(RESIDENT)
    sorry = await fake.wait_for_message(RESIDENT)
    assert "belum tersimpan" in sorry.content and "kirim lagi" in sorry.content
    fake.start(RESIDENT)  # sending again works
    await fake.wait_for_message(RESIDENT, contains="27 Tahun 2022")


async def test_a_reply_half_sent_before_telegram_failed_is_finished_without_repeats(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text went out, the pin met three 502s: the pin arrives later, the text only once."""
    import bot.inbound
    from handlers.types import Location, Outcome, Reply

    async def answer_with_a_pin(*args: Any, **kwargs: Any) -> Outcome:
        return Outcome(replies=[Reply("Pos ronda terdekat:", location=Location(-3.79, 102.25))])

    monkeypatch.setattr(bot.inbound, "process", answer_with_a_pin)
    fake = running.fake
    fake.fail_next("sendLocation", 502, times=3)
    fake.send_text(RESIDENT, RESIDENT, "pos ronda?")
    pin = await fake.wait_for_message(RESIDENT, predicate=lambda m: m.kind == "location")
    assert [m.kind for m in fake.messages(RESIDENT)] == ["text", "location"]
    assert pin.message_id == fake.messages(RESIDENT)[-1].message_id
