"""Staff on WhatsApp, end to end: the real `run` with WhatsApp and Telegram on (webhooks), the
Twilio fake (the real async twilio client over HTTP) and the Telegram fake for the officers'
groups. What a Telegram officer or coordinator gets in the group or does there, one on
WhatsApp 1:1 gets or does too: ronda Hadir/Aman by number and word (seen in /ronda and in the
recap), the officers' groups' broadcast, a group reminder through the scheduler, an escalation
from a child area, and one that climbs two levels on both channels and stops at the claim. And what a newcomer asks first (LAPOR, /darurat) starts right after the
privacy notice, on both channels."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import run
from bot.config import (
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    ReportSettings,
    SchedulerSettings,
    Settings,
    TelegramSettings,
    WhatsAppSettings,
)
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.sandbox.twilio_fake import DEFAULT_SENDER, FakeMessage, TwilioFake
from storage.areas import get_by_code
from storage.models import Contact, Outbox, PatrolRota, PatrolShift, Reminder, Report
from storage.types import utcnow
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, link_group, load_areas, make_invite
from tests.support.live import GROUP, PARENT_GROUP
from tests.support.net import free_port, until_healthy
from tests.support.stories import Schedules
from tests.support.telegram_run import WEBHOOK_SECRET, lenient_private_chats

WIB = ZoneInfo("Asia/Jakarta")
OFFICER = "+6281311112222"  # Sumber Jaya's officer on WhatsApp
OPTED_OUT_OFFICER = "+6281311113333"  # another, who typed BERHENTI
PARENT_OFFICER = "+6281322223333"  # Kampung Melayu's (the kecamatan's) officer on WhatsApp
COORDINATOR = "+6281244445555"  # on WhatsApp
MEMBER = "+6281377712345"  # a resident on the ronda team
RESIDENT = "+6281234567890"
TELEGRAM_RESIDENT = 7300000123


@dataclass
class Staff:
    """`run`'s fakes, the database and the scheduler."""

    telegram: TelegramFake
    twilio: TwilioFake
    sessions: async_sessionmaker[AsyncSession]
    url: str
    schedules: Schedules

    async def say(self, number: str, body: str, name: str = "Warga KTN") -> str:
        """A WhatsApp message from the number; the bot's next message to it."""
        before = len(self.twilio.messages_to(number))
        response = await self.twilio.post_inbound(
            self.url + "/whatsapp/inbound", self.twilio.inbound_text(number, body, name)
        )
        assert response.status_code == 200, response.text
        return (await self.twilio.wait_for_messages(number, count=before + 1, timeout=15))[
            before
        ].shown

    async def received(self, number: str, contains: str, timeout: float = 15) -> FakeMessage:  # noqa: ASYNC109
        """The first WhatsApp message to the number that contains the text (waiting for it)."""
        for _ in range(int(timeout * 20)):
            for message in self.twilio.messages_to(number):
                if contains in message.shown:
                    return message
            await asyncio.sleep(0.05)
        bodies = [m.shown[:80] for m in self.twilio.messages_to(number)]
        raise AssertionError(f"no message to {number} containing {contains!r}: {bodies}")


async def settled(staff: Staff, where: Any) -> list[Outbox]:
    """The outbox rows matching ``where`` once none is pending or being sent any more, and each
    WhatsApp one has heard back from Twilio (delivered)."""
    for _ in range(300):
        async with staff.sessions() as s:
            rows = list((await s.scalars(select(Outbox).where(where).order_by(Outbox.id))).all())
        if all(r.status in ("sent", "delivered", "read", "failed") for r in rows) and all(
            r.status != "sent" for r in rows if r.channel == "whatsapp"
        ):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError([(r.kind, r.channel, r.status) for r in rows])


def settings_for(
    telegram: TelegramFake, twilio: TwilioFake, db_url: str, data: Path, port: int, recap_hour: int
) -> Settings:
    url = f"http://127.0.0.1:{port}"
    return Settings(
        data_dir=data,
        database=DatabaseSettings(url=db_url),
        telegram=TelegramSettings(
            base_url=telegram.bot_api_url,
            base_file_url=telegram.file_api_url,
            mode="webhook",
            webhook_url=url + "/telegram/webhook",
        ),
        whatsapp=WhatsAppSettings(
            enabled=True,
            from_number=DEFAULT_SENDER,
            public_url=url,
            api_base_url=twilio.base_url,
            content_base_url=twilio.base_url,
        ),
        http=HttpSettings(port=port),
        outbox=OutboxSettings(sweep_seconds=0.2),
        reports=ReportSettings(escalation_check_seconds=1),
        scheduler=SchedulerSettings(recap_hour=recap_hour),
        telegram_token=SecretStr(DEFAULT_TOKEN),
        telegram_webhook_secret=SecretStr(WEBHOOK_SECRET),
        twilio_account_sid=SecretStr(twilio.account_sid),
        twilio_auth_token=SecretStr(twilio.auth_token),
    )


Start = Callable[..., contextlib.AbstractAsyncContextManager[Staff]]


@pytest.fixture
async def start(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Start]:
    """``async with start(recap_hour=...) as staff``: `run` until the block ends; the fakes and
    the database stay for the next start (a restart)."""
    await load_areas(sessions)
    await link_group(sessions, SUMBER_JAYA, GROUP, "Bhabin Sumber Jaya")
    await link_group(sessions, KAMPUNG_MELAYU, PARENT_GROUP, "Polsek Kampung Melayu")
    schedules = Schedules()
    schedules.watch(monkeypatch)
    port = free_port()
    twilio = TwilioFake(callback_delay=0.01)
    async with TelegramFake(flood_limits=lenient_private_chats()) as telegram, twilio.serve():
        telegram.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        telegram.add_group(PARENT_GROUP, "Polsek Kampung Melayu", kind="supergroup")

        @contextlib.asynccontextmanager
        async def running(recap_hour: int = 23) -> AsyncIterator[Staff]:
            settings = settings_for(telegram, twilio, migrated_url, tmp_path, port, recap_hour)
            stop = asyncio.Event()
            task = asyncio.create_task(run(settings, stop))
            try:
                await until_healthy(f"http://127.0.0.1:{port}", task)
                await telegram.wait_for(lambda: telegram.get_bot().webhook is not None, timeout=10)
                yield Staff(telegram, twilio, sessions, f"http://127.0.0.1:{port}", schedules)
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=15)

        yield running
        await twilio.drain()


async def register(staff: Staff, number: str, role: str, area: str, name: str) -> None:
    """An invite code typed without a slash, then consent by "1"."""
    code = await make_invite(staff.sessions, role, area)
    assert "Apakah Anda setuju?" in await staff.say(number, f"daftar {code}", name)
    await staff.say(number, "1", name)


async def onboard(staff: Staff, number: str, name: str) -> None:
    """A resident of Sumber Jaya: the notice, "1", the village by name, "1"."""
    await staff.say(number, "Halo", name)
    await staff.say(number, "1", name)
    await staff.say(number, "sumber jaya", name)
    assert "Sumber Jaya" in await staff.say(number, "1", name)


def local_clock(minutes_ago: int) -> str:
    """'HH:MM' in WIB, that many minutes ago."""
    return f"{(utcnow() - timedelta(minutes=minutes_ago)).astimezone(WIB):%H:%M}"


async def test_ronda_hadir_and_aman_on_whatsapp_reach_ronda_and_the_recap(start: Start) -> None:
    async with start() as staff:
        await register(staff, OFFICER, "officer", SUMBER_JAYA, "Bripka Wati")
        await register(staff, COORDINATOR, "coordinator", SUMBER_JAYA, "Ibu Lurah Sri")
        await onboard(staff, MEMBER, "Siti Aminah")
        added = await staff.say(COORDINATOR, "ronda tim Pos Melati: Andi", "Ibu Lurah Sri")
        assert "Pos Melati" in added
        assert "Pos Melati" in await staff.say(MEMBER, "ronda ikut 1", "Siti Aminah")
        # Tonight's announcement time came two minutes ago; the scheduler's sweep makes it.
        scheduled = await staff.say(
            COORDINATOR, f"ronda jadwal harian {local_clock(2)}", "Ibu Lurah Sri"
        )
        assert "✅" in scheduled
        async with staff.sessions() as s:
            yesterday = (utcnow().astimezone(WIB) - timedelta(days=1)).date().isoformat()
            await s.execute(update(PatrolRota).values(start_date=yesterday))
            await s.commit()
        await (await staff.schedules.running()).run_due()

        tonight = await staff.telegram.wait_for_message(GROUP, contains="Ronda malam ini", since=0)
        assert "Pos Melati" in tonight.content
        officer_copy = await staff.received(OFFICER, "Ronda malam ini")
        assert "• Andi\n• Siti Aminah" in officer_copy.body
        dm = await staff.received(MEMBER, "giliran ronda Anda")
        assert dm.shown.endswith("[✅ Hadir]")  # a tap, or "1", or the word

        present = await staff.say(MEMBER, "1", "Siti Aminah")
        assert "kehadiran Anda di ronda" in present and "tercatat" in present
        assert "[🛡 Aman] [🚨 Lapor kejadian]" in present
        assert "aman, tercatat" in await staff.say(MEMBER, "aman", "Siti Aminah")

        overview = await staff.say(COORDINATOR, "ronda", "Ibu Lurah Sri")
        assert "• Andi: tidak memakai bot" in overview
        assert re.search(r"• Siti Aminah: ✅ hadir \d\d:\d\d WIB, 🛡 aman \d\d:\d\d WIB", overview)

    # A day later (the shift was last night; the coordinator had been there before it) the
    # recap job of the restarted process sends the coordinator yesterday's recap.
    async with staff.sessions() as s:
        for shift in (await s.scalars(select(PatrolShift))).all():
            shift.created_at -= timedelta(days=1)
        await s.execute(
            update(Contact)
            .where(Contact.external_id == int(COORDINATOR[1:]))
            .values(created_at=utcnow() - timedelta(days=3))
        )
        await s.commit()
    async with start(recap_hour=0) as staff:
        recap = await staff.received(COORDINATOR, "Rekap harian Sumber Jaya")
        assert "Ronda: hadir 1 dari 2, tidak konfirmasi 1" in recap.body
        async with staff.sessions() as s:
            kinds = (
                await s.scalars(select(Outbox.kind).where(Outbox.chat_id == int(COORDINATOR[1:])))
            ).all()
        assert "recap" in kinds


async def test_whatsapp_officers_get_the_officers_groups_broadcast_and_group_reminder(
    start: Start,
) -> None:
    async with start() as staff:
        await register(staff, OFFICER, "officer", SUMBER_JAYA, "Bripka Wati")
        await register(staff, OPTED_OUT_OFFICER, "officer", SUMBER_JAYA, "Bripda Joko")
        stopped = await staff.say(OPTED_OUT_OFFICER, "BERHENTI", "Bripda Joko")
        assert "tidak akan menerima pengumuman" in stopped
        await staff.received(OPTED_OUT_OFFICER, "pesan tugas tetap dikirim")
        await register(staff, COORDINATOR, "coordinator", KAMPUNG_MELAYU, "Pak Camat")
        await onboard(staff, RESIDENT, "Siti Aminah")

        areas = await staff.say(COORDINATOR, "umumkan", "Pak Camat")
        assert "Kampung Melayu" in areas
        audiences = await staff.say(COORDINATOR, "1", "Pak Camat")
        assert "- Grup petugas" in audiences
        await staff.say(COORDINATOR, "2", "Pak Camat")
        await staff.say(COORDINATOR, "Rapat koordinasi Senin 08.00 di Polsek", "Pak Camat")
        # The two groups and the two WhatsApp officers; the resident is not in this audience.
        preview = await staff.received(COORDINATOR, "Akan dikirim ke")
        assert "Akan dikirim ke 4 penerima (Grup petugas)" in preview.body
        assert "4 penerima" in await staff.say(COORDINATOR, "1", "Pak Camat")  # Kirim

        for group in (GROUP, PARENT_GROUP):
            await staff.telegram.wait_for_message(group, contains="Rapat koordinasi", since=0)
        for number in (OFFICER, OPTED_OUT_OFFICER):  # a duty: BERHENTI does not stop it
            copy = await staff.received(number, "Rapat koordinasi")
            assert "📢 Pengumuman — Kampung Melayu" in copy.body and "BERHENTI" not in copy.body
        assert not [m for m in staff.twilio.messages_to(RESIDENT) if "Rapat" in m.body]

        # A reminder for the groups, due five minutes ago, sent by the scheduler's sweep.
        line = f"pengingat tambah setiap hari {local_clock(5)} | grup | Apel siaga banjir"
        assert "✅" in await staff.say(COORDINATOR, line, "Pak Camat")
        async with staff.sessions() as s:
            await s.execute(update(Reminder).values(created_at=utcnow() - timedelta(days=1)))
            await s.commit()
        await (await staff.schedules.running()).run_due()
        for group in (GROUP, PARENT_GROUP):
            await staff.telegram.wait_for_message(group, contains="Apel siaga banjir", since=0)
        for number in (OFFICER, OPTED_OUT_OFFICER):
            await staff.received(number, "Apel siaga banjir")
        rows = await settled(staff, Outbox.kind.in_(("broadcast", "reminder")))
        assert sorted((r.kind, r.channel, r.status) for r in rows) == [
            ("broadcast", "telegram", "sent"),
            ("broadcast", "telegram", "sent"),
            ("broadcast", "whatsapp", "delivered"),
            ("broadcast", "whatsapp", "delivered"),
            ("reminder", "telegram", "sent"),
            ("reminder", "telegram", "sent"),
            ("reminder", "whatsapp", "delivered"),
            ("reminder", "whatsapp", "delivered"),
        ]


async def test_an_escalation_from_a_child_area_reaches_the_parents_whatsapp_officer(
    start: Start,
) -> None:
    async with start() as staff:
        await register(staff, PARENT_OFFICER, "officer", KAMPUNG_MELAYU, "Iptu Bayu")
        await onboard(staff, RESIDENT, "Siti Aminah")
        assert "- Keamanan" in await staff.say(RESIDENT, "LAPOR", "Siti Aminah")
        await staff.say(RESIDENT, "1", "Siti Aminah")
        await staff.say(RESIDENT, "Ada orang mencurigakan di gang", "Siti Aminah")
        await staff.say(RESIDENT, "RT 03 dekat masjid", "Siti Aminah")
        await staff.say(RESIDENT, "lewati", "Siti Aminah")  # no photo
        await staff.say(RESIDENT, "tidak", "Siti Aminah")  # not anonymous
        assert "KTN-" in await staff.say(RESIDENT, "kirim", "Siti Aminah")
        async with staff.sessions() as s:
            report = await s.scalar(select(Report))
            assert report is not None
        alert = await staff.telegram.wait_for_message(GROUP, contains=report.ticket, since=0)
        assert not [m for m in staff.twilio.messages_to(PARENT_OFFICER) if report.ticket in m.body]

        async with staff.sessions() as s:  # nobody claimed it in time
            await s.execute(update(Report).values(escalate_at=utcnow() - timedelta(minutes=1)))
            await s.commit()
        escalated = await staff.received(PARENT_OFFICER, report.ticket)
        assert "Ada orang mencurigakan di gang" in escalated.body
        assert f"TANGANI {report.ticket}" in escalated.body
        await staff.telegram.wait_for_message(PARENT_GROUP, contains=report.ticket, since=0)

        claimed = await staff.say(PARENT_OFFICER, f"TANGANI {report.ticket}", "Iptu Bayu")
        assert claimed == f"👍 Anda menangani {report.ticket}."
        edited = await staff.telegram.wait_for_edit(GROUP, alert.message_id, since=0, timeout=10)
        assert "Iptu Bayu" in edited.content
        news = await staff.received(RESIDENT, "ditangani")
        assert report.ticket in news.body and "Iptu Bayu" in news.body
        [row] = await settled(
            staff, (Outbox.kind == "escalation") & (Outbox.chat_id == int(PARENT_OFFICER[1:]))
        )
        assert row.status == "delivered"


async def test_lapor_and_darurat_as_a_first_message_start_right_after_consent(
    start: Start,
) -> None:
    async with start() as staff:
        notice = await staff.say(RESIDENT, "LAPOR", "Siti Aminah")
        assert "Apakah Anda setuju?" in notice and notice.endswith("[Setuju] [Tidak]")
        assert "kelurahan/desa" in await staff.say(RESIDENT, "1", "Siti Aminah")
        await staff.say(RESIDENT, "sumber jaya", "Siti Aminah")
        categories = await staff.say(RESIDENT, "1", "Siti Aminah")
        assert "Kejadiannya tentang apa?" in categories and "- Keamanan" in categories

        numbers = await staff.say(MEMBER, "/darurat", "Budi")
        assert "110" in numbers
        await staff.received(MEMBER, "Apakah Anda setuju?")
        await staff.say(MEMBER, "setuju", "Budi")
        await staff.say(MEMBER, "sumber jaya", "Budi")
        await staff.say(MEMBER, "1", "Budi")
        await staff.received(MEMBER, "Laporan mendesak")

        telegram = staff.telegram
        telegram.add_user(TELEGRAM_RESIDENT, "Ratna", "Kusumawati")
        telegram.send_text(TELEGRAM_RESIDENT, TELEGRAM_RESIDENT, "/lapor")
        notice_tg = await telegram.wait_for_message(TELEGRAM_RESIDENT, contains="setuju?")
        assert "consent:yes" in notice_tg.button_data()
        telegram.press_button(
            TELEGRAM_RESIDENT, TELEGRAM_RESIDENT, notice_tg.message_id, "consent:yes"
        )
        await telegram.wait_for_message(TELEGRAM_RESIDENT, contains="kelurahan/desa")
        telegram.send_text(TELEGRAM_RESIDENT, TELEGRAM_RESIDENT, "sumber jaya")
        choices = await telegram.wait_for_message(TELEGRAM_RESIDENT, contains="Pilih kelurahan")
        telegram.press_button(
            TELEGRAM_RESIDENT, TELEGRAM_RESIDENT, choices.message_id, choices.button_data()[0]
        )
        asked = await telegram.wait_for_message(TELEGRAM_RESIDENT, contains="Kejadiannya")
        assert "cat:keamanan" in asked.button_data()
        async with staff.sessions() as s:
            area = await get_by_code(s, SUMBER_JAYA)
            people = (await s.scalars(select(Contact).order_by(Contact.id))).all()
        assert area is not None
        assert {(p.channel, p.area_id) for p in people} == {
            ("whatsapp", area.id),
            ("telegram", area.id),
        }


KOTA = "17.71"
KOTA_GROUP = -1009000001771  # Kota Bengkulu's officers' group (Telegram)
KOTA_COORDINATOR = "+6281266667777"  # Kota Bengkulu's coordinator on WhatsApp


async def file_on_whatsapp(staff: Staff, number: str, category: str, what: str) -> Report:
    """A report filed by a resident on WhatsApp, the category by its number."""
    await staff.say(number, "LAPOR", "Siti Aminah")
    await staff.say(number, category, "Siti Aminah")
    await staff.say(number, what, "Siti Aminah")
    await staff.say(number, "RT 03 dekat masjid", "Siti Aminah")
    await staff.say(number, "lewati", "Siti Aminah")  # no photo
    await staff.say(number, "tidak", "Siti Aminah")  # not anonymous
    assert "KTN-" in await staff.say(number, "kirim", "Siti Aminah")
    async with staff.sessions() as s:
        report = await s.scalar(select(Report).where(Report.description == what))
        assert report is not None
        return report


async def time_passes(staff: Staff, *reports: Report) -> None:
    """The reports' next escalation step falls due (the clock moved, as far as they know)."""
    async with staff.sessions() as s:
        await s.execute(
            update(Report)
            .where(Report.id.in_([r.id for r in reports]), Report.escalate_at.is_not(None))
            .values(escalate_at=utcnow() - timedelta(minutes=1))
        )
        await s.commit()


async def escalation_metrics(staff: Staff) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(staff.url + "/metrics")).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ktn_escalations_total")
    }


async def test_an_escalation_climbs_two_levels_on_both_channels_and_stops_at_the_claim(
    start: Start,
) -> None:
    """Level 1: the kecamatan's Telegram group and its officer on WhatsApp; level 2: the kota's
    Telegram group and its coordinator on WhatsApp, who claims it; then nothing more climbs
    (another report, left unclaimed, shows that the sweeps went on)."""
    async with start() as staff:
        staff.telegram.add_group(KOTA_GROUP, "Polres Bengkulu", kind="supergroup")
        await link_group(staff.sessions, KOTA, KOTA_GROUP, "Polres Bengkulu")
        await register(staff, PARENT_OFFICER, "officer", KAMPUNG_MELAYU, "Iptu Bayu")
        await register(staff, KOTA_COORDINATOR, "coordinator", KOTA, "Kompol Rudi")
        await onboard(staff, RESIDENT, "Siti Aminah")
        report = await file_on_whatsapp(staff, RESIDENT, "1", "Ada orang mencurigakan di gang")
        await staff.telegram.wait_for_message(GROUP, contains=report.ticket, since=0)

        await time_passes(staff, report)  # level 1
        level_1 = await staff.received(PARENT_OFFICER, report.ticket)
        assert level_1.body.startswith("⏰ ESKALASI: belum ditangani setelah")
        await staff.telegram.wait_for_message(PARENT_GROUP, contains=report.ticket, since=0)
        assert not [
            m for m in staff.twilio.messages_to(KOTA_COORDINATOR) if report.ticket in m.body
        ]

        await time_passes(staff, report)  # level 2
        level_2 = await staff.received(KOTA_COORDINATOR, report.ticket)
        assert level_2.body.startswith("⏰ ESKALASI tingkat 2: belum ditangani setelah")
        assert f"TANGANI {report.ticket}" in level_2.body
        in_kota = await staff.telegram.wait_for_message(
            KOTA_GROUP, contains="ESKALASI tingkat 2", since=0
        )
        assert report.ticket in in_kota.content

        claimed = await staff.say(KOTA_COORDINATOR, f"TANGANI {report.ticket}", "Kompol Rudi")
        assert claimed == f"👍 Anda menangani {report.ticket}."
        edited = await staff.telegram.wait_for_edit(
            KOTA_GROUP, in_kota.message_id, since=0, timeout=10
        )
        assert "Kompol Rudi" in edited.content
        # The resident hears of the claim (sent in the background) before writing again, so
        # that news is not taken for the answer to their next message.
        await staff.received(RESIDENT, "Kompol Rudi")

        witness = await file_on_whatsapp(staff, RESIDENT, "2", "Banyak warga demam tinggi")
        await time_passes(staff, report, witness)
        await staff.received(PARENT_OFFICER, witness.ticket)  # a sweep ran after the claim
        async with staff.sessions() as s:
            after = await s.get(Report, report.id)
            assert after is not None
            assert (after.status, after.escalation_level) == ("claimed", 2), "stopped at the claim"
        assert await escalation_metrics(staff) == {
            'ktn_escalations_total{level="1"}': 2.0,  # the report, then the witness
            'ktn_escalations_total{level="2"}': 1.0,
        }
