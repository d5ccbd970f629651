"""The whole Telegram story against the fake Bot API, with the real `run` process.

invite -> /daftar -> /hubungkan -> resident /start <area> -> /lapor ... Kirim -> alert in the group
-> a stranger's press refused -> Tangani (the alert edited in place) -> a colleague's stale press
answered. Also: an unclaimed report escalates to the parent area's group once, from the
database, across a restart. Claim, Selesai with a note, the news, anonymity: the stories run on
both channels in tests/e2e/test_stories.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.sandbox.telegram_fake import TelegramFake
from storage.areas import get_by_code
from storage.models import GroupChat, Outbox, Report
from storage.types import Role
from tests.support.chats import SUMBER_JAYA, load_areas
from tests.support.telegram_run import (
    Running,
    bot_running,
    file_report,
    invite_code,
    lenient_private_chats,
    settings_for,
)

GROUP = -1001111111111
KECAMATAN_GROUP = -1002222222222
OFFICER = 601
COLLEAGUE = 602
STRANGER = 777
RESIDENT = 501


def group_texts(fake: TelegramFake, chat_id: int) -> list[str]:
    """Everything a group member could ever read: every message and every version of it."""
    out = []
    for message in fake.messages(chat_id):
        out.append(message.content)
        out.extend(f"{edit.text or ''} {edit.caption or ''}" for edit in message.edits)
    return out


@pytest.fixture
async def story(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Running]:
    await load_areas(sessions)
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_user(OFFICER, "Andi", "Saputra")
        fake.add_user(COLLEAGUE, "Wayan")
        fake.add_user(STRANGER, "Budi")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        async with bot_running(fake, settings_for(fake, migrated_url, tmp_path), sessions) as bot:
            yield bot


async def register_and_link(bot: Running) -> None:
    """Two officers redeem invites in private, then one links the group."""
    fake = bot.fake
    for officer in (OFFICER, COLLEAGUE):
        code = await invite_code(bot.sessions, Role.OFFICER, SUMBER_JAYA)
        fake.send_text(officer, officer, f"/daftar {code}")
        welcome = await fake.wait_for_message(officer)
        assert "Sumber Jaya" in welcome.content
    fake.send_text(GROUP, OFFICER, "/hubungkan")
    linked = await fake.wait_for_message(GROUP)
    assert "Sumber Jaya" in linked.content


async def test_invite_register_link_report_claim_and_stale_presses(story: Running) -> None:
    fake = story.fake
    await register_and_link(story)

    confirmation = await file_report(story, RESIDENT)
    async with story.sessions() as s:
        report = await s.scalar(select(Report))
        assert report is not None
    assert report.ticket in confirmation
    alert = await fake.wait_for_message(GROUP, contains=report.ticket)
    assert alert.kind == "photo"  # the resident's photo, the alert as its caption
    assert alert.button_data() == [
        f"claim:{report.id}",
        f"resolve:{report.id}",
        f"reject:{report.id}",
        f"merge:{report.id}",
        f"pmenu:{report.id}",
    ]

    mark = fake.mark()
    await story.press(GROUP, STRANGER, "Tangani", alert)
    # the resident's own last press may still be answered after the mark: this group's answer
    refusal = await fake.wait_for_callback_answer(since=mark, chat_id=GROUP)
    assert refusal.text is not None and "hanya petugas" in refusal.text
    assert alert.edits == []

    await story.press(GROUP, OFFICER, "Tangani", alert)
    claimed = await fake.wait_for_edit(GROUP, alert.message_id, contains="Ditangani oleh")
    assert "Andi" in claimed.content
    news = await fake.wait_for_message(RESIDENT, contains="sedang ditangani")
    assert report.ticket in news.content and "Andi" in news.content

    mark = fake.mark()  # a colleague's stale screen still shows Tangani
    fake.press_button(GROUP, COLLEAGUE, alert.message_id, f"claim:{report.id}", check=False)
    second = await fake.wait_for_callback_answer(since=mark, chat_id=GROUP)
    assert second.text is not None and "Sudah ditangani oleh Andi" in second.text
    assert len(alert.edits) == 1


async def test_unclaimed_report_escalates_once_across_a_restart(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A report filed before a restart and left unclaimed reaches the parent area's group once."""
    await load_areas(sessions)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None and area.parent_id is not None
        s.add(GroupChat(channel="telegram", chat_id=GROUP, area_id=area.id, title="Desa"))
        s.add(
            GroupChat(
                channel="telegram", chat_id=KECAMATAN_GROUP, area_id=area.parent_id, title="Kec"
            )
        )
        await s.commit()
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_user(RESIDENT, "Siti", "Aminah")
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_group(KECAMATAN_GROUP, "Polsek", kind="supergroup")
        settings = settings_for(fake, migrated_url, tmp_path)
        settings.reports.escalation_check_seconds = 1
        async with bot_running(fake, settings, sessions) as bot:
            await file_report(bot, RESIDENT)
            await fake.wait_for_message(GROUP, contains="KTN-")
        assert fake.messages(KECAMATAN_GROUP) == []

        async with sessions() as s:  # an hour passes while the bot is down
            report = await s.scalar(select(Report))
            assert report is not None
            report.created_at -= timedelta(hours=2)
            if report.escalate_at is not None:
                report.escalate_at -= timedelta(hours=2)
            await s.commit()

        async with bot_running(fake, settings, sessions):
            escalated = await fake.wait_for_message(KECAMATAN_GROUP, contains=report.ticket)
            assert "Siti" in escalated.content  # not anonymous: officers may see the name
        async with sessions() as s:
            rows = (
                await s.scalars(
                    select(Outbox).where(Outbox.report_id == report.id, Outbox.kind == "escalation")
                )
            ).all()
            again = await s.get(Report, report.id)
        assert again is not None and again.escalated_at is not None
        assert [row.status for row in rows] == ["sent"]
        assert [m for m in fake.messages(KECAMATAN_GROUP) if report.ticket in m.content] == [
            escalated
        ]


NEIGHBOUR = 502


async def test_duplicate_closure_photo_and_reopen_in_the_group(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Duplikat on the group's alert merges a report; Selesai needs a photo of the result; the
    reporter gets it with Sudah beres / Belum, and Belum sends it back to the group."""
    await load_areas(sessions)
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_user(OFFICER, "Andi", "Saputra")
        fake.add_user(COLLEAGUE, "Wayan")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        fake.add_user(NEIGHBOUR, "Joko", "Susilo")
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        settings = settings_for(fake, migrated_url, tmp_path)
        settings.reports.duplicate_window_hours = 0  # the second resident files anew
        for category in settings.reports.categories:
            if category.key == "keamanan":
                category.closure_photo = "required"
        async with bot_running(fake, settings, sessions) as story:
            await register_and_link(story)
            await file_report(story, RESIDENT, anonymous=True)
            await file_report(story, NEIGHBOUR, "Motor hilang lagi di gang yang sama")
            async with sessions() as s:
                main, dup = (await s.scalars(select(Report).order_by(Report.id))).all()
            main_alert = await fake.wait_for_message(GROUP, contains=main.ticket, since=0)
            dup_alert = await fake.wait_for_message(GROUP, contains=dup.ticket, since=0)
            assert dup_alert.button_data()[-2:] == [f"merge:{dup.id}", f"pmenu:{dup.id}"]

            # Duplikat on the group's alert: the other ticket is asked for privately.
            mark = fake.mark()
            await story.press(GROUP, OFFICER, "Duplikat", dup_alert)
            pointer = await fake.wait_for_callback_answer(since=mark, chat_id=GROUP)
            assert pointer.text == "Cek chat pribadi untuk menulis catatan."
            await fake.wait_for_message(OFFICER, contains=f"{dup.ticket} duplikat dari laporan")
            fake.send_text(OFFICER, OFFICER, main.ticket)
            await fake.wait_for_message(OFFICER, contains=f"{dup.ticket} digabung ke")
            merged = await fake.wait_for_edit(GROUP, dup_alert.message_id, contains="Digabung")
            assert f"🔗 Digabung ke {main.ticket} oleh Andi" in merged.content
            assert merged.button_data() == []
            told = await fake.wait_for_message(NEIGHBOUR, contains="digabung")
            assert main.ticket in told.content

            # Selesai: a photo of the result with the note as its caption.
            await story.press(GROUP, OFFICER, "Selesai", main_alert)
            await fake.wait_for_message(OFFICER, contains="foto wajib untuk jenis laporan ini")
            fake.send_text(OFFICER, OFFICER, "Motor ditemukan")  # the note alone: not yet
            await fake.wait_for_message(OFFICER, contains="Sekarang kirim foto")
            fake.send_photo(OFFICER, OFFICER, b"\xff\xd8\xff\xe0 the motorbike is back")
            done = await fake.wait_for_edit(GROUP, main_alert.message_id, contains="Selesai oleh")
            assert "Motor ditemukan" in done.content and "Foto hasil penanganan" in done.content
            news = await fake.wait_for_message(RESIDENT, contains="sudah selesai")
            assert news.kind == "photo" and "Motor ditemukan" in news.content
            assert news.button_data() == [f"fixed:{main.id}", f"notfixed:{main.id}"]
            followed = await fake.wait_for_message(NEIGHBOUR, contains="sudah selesai")
            assert followed.kind == "photo" and followed.button_data() == []

            # Belum: the reason, then back to the group as reopened.
            await story.press(RESIDENT, RESIDENT, "Belum", news)
            await fake.wait_for_message(RESIDENT, contains="Apa yang belum selesai")
            mark = fake.mark()
            fake.send_text(RESIDENT, RESIDENT, "Motornya belum dikembalikan ke saya")
            await fake.wait_for_message(RESIDENT, contains="dibuka lagi")
            again = await fake.wait_for_message(GROUP, contains="DIBUKA LAGI", since=mark)
            assert main.ticket in again.content
            assert "Motornya belum dikembalikan ke saya" in again.content
            assert again.button_data()[0] == f"claim:{main.id}"
            await fake.wait_for_edit(GROUP, main_alert.message_id, contains="Dibuka lagi")

            # A second press of Belum changes nothing.
            await story.press(RESIDENT, RESIDENT, "Belum", news)
            await fake.wait_for_message(RESIDENT, contains="sudah dibuka lagi dan sedang menunggu")
            async with sessions() as s:
                reopened = await s.get(Report, main.id)
                assert reopened is not None and reopened.status == "reopened"

            seen_by_group = "\n".join(group_texts(fake, GROUP))
            for secret in ("Siti", "Aminah", str(RESIDENT)):
                assert secret not in seen_by_group
