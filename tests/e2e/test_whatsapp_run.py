"""End to end on WhatsApp: the real `run` with WhatsApp and Telegram on, the Twilio fake for REST
(the real async twilio client over HTTP on 127.0.0.1), inbound webhooks signed with the real
RequestValidator, the Telegram fake for the officers' group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot.app
import bot.inbound
from bot.app import StartupError, run
from bot.config import (
    CategorySettings,
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    ReportSettings,
    Settings,
    TelegramSettings,
    WhatsAppSettings,
)
from bot.roles.scheduler import ReminderScheduler
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from bot.sandbox.twilio_fake import DEFAULT_SENDER, FakeMessage, StatusEvent, TwilioFake
from handlers.types import Reply
from storage import delivery
from storage.areas import get_by_code
from storage.models import (
    Contact,
    Conversation,
    GroupChat,
    Outbox,
    ProcessedInbound,
    Report,
    ReportMedia,
)
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA, WIYONO, load_areas, make_invite
from tests.support.media import ref_of, stored_files
from tests.support.net import free_port, until_healthy

GROUP = -1001234567890
RESIDENT = "+6281234567890"
OFFICER = "+6281311112222"
OTHER_OFFICER = "+6281399998888"
STRANGER = "+6285700001111"
COORDINATOR = "+6281244445555"
TELEGRAM_COORDINATOR = 8101
TELEGRAM_RESIDENT = 8102
STATUS_TEMPLATE = "HX" + "5a" * 16
PHOTO = b"\xff\xd8\xff\xe0 a photo of the flooded road"
PIN = (-3.7956, 102.2592)


@dataclass
class Bots:
    """The running bot, its Telegram and Twilio fakes, and the database."""

    telegram: TelegramFake
    twilio: TwilioFake
    sessions: async_sessionmaker[AsyncSession]
    url: str
    schedules: Schedules

    async def metrics(self) -> dict[str, float]:
        """The process's /metrics samples, by name and labels as written there."""
        async with httpx.AsyncClient(trust_env=False) as client:
            text = (await client.get(self.url + "/metrics")).text
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    @property
    def inbound_url(self) -> str:
        return self.url + "/whatsapp/inbound"

    async def post(self, form: dict[str, str], signature: str | None = "auto") -> httpx.Response:
        """Twilio posts an inbound webhook (signed with the real RequestValidator)."""
        return await self.twilio.post_inbound(self.inbound_url, form, signature)

    async def say(self, number: str, body: str, *, name: str = "Siti Aminah") -> str:
        """The user writes; returns the bot's answer as they see it (the next WhatsApp message
        to them, with its buttons)."""
        return (await self.answer(number, self.twilio.inbound_text(number, body, name))).shown

    async def deliver(self, number: str, form: dict[str, str]) -> str:
        """Post a prepared form and wait for the answer, as the user sees it."""
        return (await self.answer(number, form)).shown

    async def answer(self, number: str, form: dict[str, str]) -> FakeMessage:
        """Post a prepared form; the bot's next message to the number."""
        before = len(self.twilio.messages_to(number))
        response = await self.post(form)
        assert response.status_code == 200, response.text
        assert response.text.endswith("<Response />")
        messages = await self.twilio.wait_for_messages(number, count=before + 1, timeout=10)
        return messages[before]

    async def tap(
        self, message: FakeMessage, choice: str | int, *, name: str = "Siti Aminah"
    ) -> FakeMessage:
        """The user taps a button (or picks a list item) of a message they got; the answer."""
        number = message.to.removeprefix("whatsapp:")
        return await self.answer(number, self.twilio.tap(message, choice, profile_name=name))

    async def message(self, number: str, body: str, *, name: str = "Siti Aminah") -> FakeMessage:
        """The user writes; the bot's answer as a message (its buttons can be tapped)."""
        return await self.answer(number, self.twilio.inbound_text(number, body, name))

    async def row_status(self, sid: str, wanted: str, timeout: float = 30.0) -> Outbox:  # noqa: ASYNC109
        """Wait until the outbox row of this SID has the wanted status."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.sessions() as s:
                row = await s.scalar(select(Outbox).where(Outbox.external_id == sid))
            if row is not None and row.status == wanted:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"row of {sid}: {row.status if row else None}, not {wanted}")
            await asyncio.sleep(0.05)

    async def count(self, model: Any) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def link_alert_group(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_areas(sessions)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(GroupChat(channel="telegram", chat_id=GROUP, area_id=area.id, title="Bhabin"))
        await s.commit()


@dataclass
class Schedules:
    """The scheduler `run` makes, once this process leads and has started it."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    made: list[ReminderScheduler] = field(default_factory=list)

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = bot.app.make_scheduler

        def make_scheduler(*args: Any, **kwargs: Any) -> ReminderScheduler | None:
            scheduler = real(*args, **kwargs)
            if scheduler is not None:
                start = scheduler.start

                async def started() -> None:
                    await start()
                    self.started.set()

                scheduler.start = started  # type: ignore[method-assign]
                self.made.append(scheduler)
            return scheduler

        monkeypatch.setattr(bot.app, "make_scheduler", make_scheduler)

    async def running(self) -> ReminderScheduler:
        await asyncio.wait_for(self.started.wait(), timeout=10)
        [scheduler] = self.made
        return scheduler


def settings_for(
    telegram: TelegramFake, twilio: TwilioFake, db_url: str, data: Path, port: int
) -> Settings:
    return Settings(
        data_dir=data,
        database=DatabaseSettings(url=db_url),
        telegram=TelegramSettings(
            base_url=telegram.bot_api_url, base_file_url=telegram.file_api_url, poll_timeout=1
        ),
        whatsapp=WhatsAppSettings(
            enabled=True,
            from_number=DEFAULT_SENDER,
            public_url=f"http://127.0.0.1:{port}",
            api_base_url=twilio.base_url,
            content_base_url=twilio.base_url,
            templates={"status": STATUS_TEMPLATE},
        ),
        http=HttpSettings(port=port),
        outbox=OutboxSettings(sweep_seconds=0.2),
        telegram_token=SecretStr(DEFAULT_TOKEN),
        twilio_account_sid=SecretStr(twilio.account_sid),
        twilio_auth_token=SecretStr(twilio.auth_token),
    )


@pytest.fixture
async def bots(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Bots]:
    async with running_bots(migrated_url, sessions, tmp_path, monkeypatch) as started:
        yield started


@contextlib.asynccontextmanager
async def running_bots(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reports: ReportSettings | None = None,
) -> AsyncIterator[Bots]:
    """The real `run` with both fakes (``reports``: other report settings)."""
    await link_alert_group(sessions)
    schedules = Schedules()
    schedules.watch(monkeypatch)
    port = free_port()
    twilio = TwilioFake(callback_delay=0.01)
    twilio.add_template(STATUS_TEMPLATE, "Kabar laporan {{3}}: {{1}}")
    async with (
        TelegramFake(flood_limits=FloodLimits(per_private=((3, 1.0),))) as telegram,
        twilio.serve(),
    ):
        telegram.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        settings = settings_for(telegram, twilio, migrated_url, tmp_path, port)
        if reports is not None:
            settings = settings.model_copy(update={"reports": reports})
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        try:
            await until_healthy(f"http://127.0.0.1:{port}", task)
            yield Bots(telegram, twilio, sessions, f"http://127.0.0.1:{port}", schedules)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
            await twilio.drain()


async def onboard(
    bots: Bots, number: str, name: str = "Siti Aminah", village: str = "Sumber Jaya"
) -> None:
    """First contact: the privacy notice (with buttons), consent by typing "1" (the number
    of a button still names it), the village by name, then "1" for the one place listed."""
    notice = await bots.say(number, "Halo", name=name)
    assert "Apakah Anda setuju?" in notice and notice.endswith("[Setuju] [Tidak]")
    assert "kelurahan/desa" in await bots.say(number, "1", name=name)
    choices = await bots.say(number, village.lower(), name=name)
    assert "[≡ Pilih]" in choices and f"- {village} (" in choices
    assert village in await bots.say(number, "1", name=name)


async def file_report(bots: Bots, number: str = RESIDENT, village: str = "Sumber Jaya") -> str:
    """A full report by WhatsApp: LAPOR, "1", words, a pin (empty Body), a photo, send."""
    await onboard(bots, number, village=village)
    categories = await bots.say(number, "LAPOR")
    assert "[≡ Pilih]\n- Keamanan\n- Kesehatan" in categories and categories.endswith("- Lainnya")
    assert "Ceritakan" in await bots.say(number, "1")
    await bots.say(number, "Jalan di depan balai desa banjir setinggi lutut")
    pin = bots.twilio.inbound_location(
        number, *PIN, address="Jl. Melati 5", label="Balai desa", profile_name="Siti Aminah"
    )
    assert pin["Body"] == ""
    await bots.deliver(number, pin)
    photo = bots.twilio.inbound_media(number, PHOTO, "image/jpeg", profile_name="Siti Aminah")
    await bots.deliver(number, photo)
    summary = await bots.say(number, "tidak")  # not anonymous
    assert "Sudah benar?" in summary, summary
    confirmation = await bots.say(number, "kirim")
    assert "KTN-" in confirmation, confirmation
    return confirmation


async def report_row(bots: Bots) -> Report:
    async with bots.sessions() as s:
        report: Report | None = await s.scalar(select(Report))
    assert report is not None
    return report


async def register_officer(
    bots: Bots, number: str = OFFICER, area: str = SUMBER_JAYA, name: str = "Bripka Wati"
) -> None:
    """An invite code typed without a slash, then consent by "1": an officer of the area."""
    code = await make_invite(bots.sessions, "officer", area)
    assert "Apakah Anda setuju?" in await bots.say(number, f"daftar {code}", name=name)
    await bots.say(number, "1", name=name)
    async with bots.sessions() as s:
        contact = await s.scalar(select(Contact).where(Contact.external_id == int(number[1:])))
    assert contact is not None and contact.role == "officer"


async def test_a_resident_reports_by_whatsapp_and_an_officer_claims_by_reply(
    bots: Bots, tmp_path: Path
) -> None:
    await register_officer(bots)
    officer_before = len(bots.twilio.messages_to(OFFICER))
    confirmation = await file_report(bots)
    report = await report_row(bots)
    assert report.ticket in confirmation
    assert (report.latitude, report.longitude) == PIN
    alert = await bots.telegram.wait_for_message(GROUP, contains=report.ticket, since=0, timeout=10)
    assert "Siti Aminah" in alert.content and "Jalan di depan balai desa" in alert.content
    assert alert.button_data()[0] == f"claim:{report.id}"
    # The WhatsApp officer cannot see the Telegram group: the alert comes 1:1, with the words.
    _photo, alert_message = await wait_alert(bots, OFFICER, officer_before)
    officer_alert = alert_message.body
    assert report.ticket in officer_alert and "Jalan di depan balai desa" in officer_alert
    assert f"Balas TANGANI {report.ticket} untuk menangani" in officer_alert
    assert "(https://maps.google.com/?q=-3.7956,102.2592)" in officer_alert

    async with bots.sessions() as s:
        [media] = (await s.scalars(select(ReportMedia))).all()
    assert (media.kind, media.channel, media.content_type) == ("photo", "whatsapp", "image/jpeg")
    assert media.store_ref == media.file_ref == ref_of(PHOTO) and media.size == len(PHOTO)
    [stored] = stored_files(tmp_path / "media")  # named by its content, under data_dir/media
    assert stored.name == ref_of(PHOTO).removeprefix("sha256:")
    assert await asyncio.to_thread(stored.read_bytes) == PHOTO
    for _ in range(100):  # deleted at Twilio right after the commit, in the background
        if bots.twilio.counters["media_deleted"]:
            break
        await asyncio.sleep(0.05)
    assert bots.twilio.media == {} and len(bots.twilio.deleted_media) == 1

    before = len(bots.twilio.messages_to(RESIDENT))
    answer = await bots.say(OFFICER, f"TANGANI {report.ticket.lower()}", name="Bripka Wati")
    assert answer == f"👍 Anda menangani {report.ticket}."
    news = await wait_news(bots, RESIDENT, before)
    told = news.body
    assert report.ticket in told and "Bripka Wati" in told and "ditangani" in told
    edited = await bots.telegram.wait_for_edit(GROUP, alert.message_id, since=0, timeout=10)
    assert "Bripka Wati" in edited.content
    assert edited.button_data() == [
        f"resolve:{report.id}",
        f"reject:{report.id}",
        f"merge:{report.id}",
        f"pmenu:{report.id}",
    ]

    row = await bots.row_status(news.sid, "delivered")
    assert row.kind == "status" and news.content_sid is None  # in the window: free text


async def test_without_a_group_the_whatsapp_officer_gets_the_alert_and_resolves_by_reply(
    bots: Bots,
) -> None:
    code = await make_invite(bots.sessions, "officer", WIYONO)
    await bots.say(OFFICER, f"/daftar {code}", name="Bripka Wati")
    await bots.say(OFFICER, "setuju", name="Bripka Wati")
    before = len(bots.twilio.messages_to(OFFICER))
    await file_report(bots, village="Wiyono")
    report = await report_row(bots)
    alert = (await wait_alert(bots, OFFICER, before))[1].body
    assert report.ticket in alert and "Jalan di depan balai desa" in alert
    assert f"Balas TANGANI {report.ticket} untuk menangani" in alert
    assert "📍 -3.7956, 102.2592 (https://maps.google.com/?q=-3.7956,102.2592)" in alert
    before = len(bots.twilio.messages_to(RESIDENT))
    done = await bots.say(OFFICER, f"Selesai {report.ticket} sudah surut", name="Bripka Wati")
    assert report.ticket in done
    news = (await wait_news(bots, RESIDENT, before)).body
    assert report.ticket in news and "sudah surut" in news
    assert bots.telegram.messages(GROUP) == []


async def outbox_kinds(bots: Bots) -> list[str]:
    async with bots.sessions() as s:
        return list((await s.scalars(select(Outbox.kind).order_by(Outbox.id))).all())


async def test_strangers_and_other_areas_are_refused_and_tolak_needs_its_officer(
    bots: Bots,
) -> None:
    await register_officer(bots)
    await register_officer(bots, OTHER_OFFICER, WIYONO, name="Bripda Joko")
    await file_report(bots)
    report = await report_row(bots)
    alert = await bots.telegram.wait_for_message(GROUP, contains=report.ticket, since=0, timeout=10)
    await onboard(bots, STRANGER, name="Budi")
    resident_before = len(bots.twilio.messages_to(RESIDENT))
    kinds_before = await outbox_kinds(bots)

    refused = await bots.say(STRANGER, f"TANGANI {report.ticket}", name="Budi")
    assert refused.startswith("Maaf, perintah ini hanya untuk petugas dan koordinator KTN.")
    other = await bots.say(OTHER_OFFICER, f"tangani {report.ticket}", name="Bripda Joko")
    assert other == (
        "Maaf, hanya petugas atau koordinator wilayah laporan ini yang bisa melakukannya. "
        "Tidak ada yang diubah."
    )
    other = await bots.say(OTHER_OFFICER, f"Tolak {report.ticket} salah", name="Bripda Joko")
    assert other.startswith("Maaf, hanya petugas atau koordinator wilayah laporan ini")
    assert (await report_row(bots)).status == "new"
    new_kinds = (await outbox_kinds(bots))[len(kinds_before) :]
    assert "alert_edit" not in new_kinds and "status" not in new_kinds, new_kinds
    assert len(bots.twilio.messages_to(RESIDENT)) == resident_before

    reason = "bukan kejadian di Sumber Jaya"
    done = await bots.say(OFFICER, f"TOLAK {report.ticket} {reason}", name="Bripka Wati")
    assert done == f"⛔ {report.ticket} ditolak."
    rejected = await report_row(bots)
    assert (rejected.status, rejected.resolution_note) == ("rejected", reason)
    news = (await wait_news(bots, RESIDENT, resident_before)).body
    assert f"Laporan {report.ticket} tidak dilanjutkan oleh Bripka Wati" in news
    assert f"Alasan: {reason}" in news
    edited = await bots.telegram.wait_for_edit(GROUP, alert.message_id, since=0, timeout=10)
    assert "Ditolak oleh Bripka Wati" in edited.content and edited.button_data() == []


async def test_commands_without_a_slash_and_stop_then_start_again(bots: Bots) -> None:
    await file_report(bots)
    report = await report_row(bots)
    status = await bots.say(RESIDENT, f"Status {report.ticket.lower()}")
    assert report.ticket in status and "menunggu petugas" in status
    assert "- Keamanan" in await bots.say(RESIDENT, "lapor")
    assert (await bots.say(RESIDENT, "BATAL")).startswith("Laporan dibatalkan.")

    assert (await bots.say(RESIDENT, "BERHENTI")).startswith("Baik, Anda tidak akan menerima")
    first = await queue_broadcast(bots, "Kerja bakti hari Minggu")
    failed = await wait_row(bots, first, "failed")
    assert "opted out" in (failed.last_error or "")
    assert "Anda akan menerima pengumuman lagi." in await bots.say(RESIDENT, "mulai")
    second = await queue_broadcast(bots, "Posyandu hari Selasa")
    sent = await wait_row(bots, second, "delivered")
    assert bots.twilio.message(str(sent.external_id)).body == "Posyandu hari Selasa"
    assert all(m.body != "Kerja bakti hari Minggu" for m in bots.twilio.messages)


async def queue_broadcast(bots: Bots, text: str) -> int:
    """A broadcast row for the resident, as the broadcast feature writes it."""
    async with bots.sessions() as s:
        contact = await s.scalar(select(Contact).where(Contact.external_id == int(RESIDENT[1:])))
        assert contact is not None
        row = Outbox(
            channel="whatsapp",
            chat_id=contact.external_id,
            contact_id=contact.id,
            kind="broadcast",
            payload={"reply": Reply(text).to_json()},
        )
        s.add(row)
        await s.commit()
        return row.id


async def wait_row(bots: Bots, row_id: int, wanted: str, timeout: float = 10.0) -> Outbox:  # noqa: ASYNC109
    """Wait until the outbox row has the wanted status (the dispatcher sweeps every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        async with bots.sessions() as s:
            row = await s.get(Outbox, row_id)
        if row is not None and row.status == wanted:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"row {row_id}: {row.status if row else None}, not {wanted}")
        await asyncio.sleep(0.05)


async def wait_news(bots: Bots, number: str, before: int) -> FakeMessage:
    return (await bots.twilio.wait_for_messages(number, count=before + 1, timeout=10))[before]


async def wait_alert(bots: Bots, number: str, before: int) -> tuple[FakeMessage, FakeMessage]:
    """A WhatsApp officer's alert for a report with a photo: the photo alone, then the words
    with their buttons (a buttons message carries no medium)."""
    got = await bots.twilio.wait_for_messages(number, count=before + 2, timeout=10)
    photo, alert = got[before : before + 2]
    assert len(photo.media_urls) == 1 and not photo.body and not photo.buttons
    return photo, alert


async def test_forged_or_missing_signatures_are_refused_and_nothing_is_recorded(
    bots: Bots,
) -> None:
    form = bots.twilio.inbound_text(RESIDENT, "LAPOR")
    assert (await bots.post(form, signature=None)).status_code == 403
    assert (await bots.post(form, signature="forged")).status_code == 403
    behind_proxy = await bots.twilio.post_inbound(
        bots.inbound_url, form, signed_url="http://10.0.0.5:8080/whatsapp/inbound"
    )
    assert behind_proxy.status_code == 403  # signed for another URL than the public one
    tampered = {**form, "Body": "BATAL"}
    sig = bots.twilio.sign(bots.inbound_url, form)
    assert (await bots.post(tampered, signature=sig)).status_code == 403
    malformed = {k: v for k, v in form.items() if k not in ("From", "WaId")}
    assert (await bots.post(malformed)).status_code == 400
    async with httpx.AsyncClient(trust_env=False) as client:
        status = await client.post(
            bots.url + "/whatsapp/status", data={"MessageSid": "SM1", "MessageStatus": "read"}
        )
    assert status.status_code == 403
    for model in (Contact, ProcessedInbound, Outbox):
        assert await bots.count(model) == 0, model
    assert bots.twilio.messages == []


async def test_a_retried_message_sid_is_processed_once(bots: Bots) -> None:
    form = bots.twilio.inbound_text(RESIDENT, "Halo")
    first, second = await asyncio.gather(bots.post(form), bots.post(form))
    assert first.status_code == second.status_code == 200
    third = await bots.twilio.redeliver(bots.inbound_url, form)
    assert third.status_code == 200
    await bots.twilio.wait_for_messages(RESIDENT, count=1)
    await asyncio.sleep(0.5)  # room for a second answer, which must not come
    assert len(bots.twilio.messages_to(RESIDENT)) == 1
    assert await bots.count(ProcessedInbound) == 1
    assert await bots.count(Outbox) == 1


async def test_a_notice_outside_the_24h_window_goes_as_a_template(
    bots: Bots, migrated_url: str, tmp_path: Path
) -> None:
    await file_report(bots)
    report = await report_row(bots)
    yesterday = utcnow() - timedelta(hours=25)
    async with bots.sessions() as s:  # the resident last wrote 25 hours ago
        await s.execute(
            update(Contact)
            .where(Contact.external_id == int(RESIDENT[1:]))
            .values(last_inbound_at=yesterday)
        )
        await s.commit()
    bots.twilio.set_last_inbound(RESIDENT, time.time() - 25 * 3600)

    code = await make_invite(bots.sessions, "officer", SUMBER_JAYA)
    await bots.say(OFFICER, f"DAFTAR {code}", name="Bripka Wati")
    before = len(bots.twilio.messages_to(RESIDENT))
    await bots.say(OFFICER, "1", name="Bripka Wati")
    await bots.say(OFFICER, f"tangani {report.ticket}", name="Bripka Wati")
    news = await wait_news(bots, RESIDENT, before)
    assert news.content_sid == STATUS_TEMPLATE
    assert news.content_variables is not None and news.content_variables["3"] == report.ticket
    assert news.body.startswith(f"Kabar laporan {report.ticket}: ")
    row = await bots.row_status(news.sid, "delivered")
    assert row.kind == "status"

    # A broadcast to them has no template configured: recorded for the admins, not sent.
    async with bots.sessions() as s:
        contact = await s.scalar(select(Contact).where(Contact.external_id == int(RESIDENT[1:])))
        assert contact is not None
        s.add(
            Outbox(
                channel="whatsapp",
                chat_id=contact.external_id,
                contact_id=contact.id,
                kind="broadcast",
                payload={"reply": Reply("Kerja bakti hari Minggu").to_json()},
            )
        )
        await s.commit()
    for _ in range(100):
        async with bots.sessions() as s:
            undelivered = await delivery.undelivered(s)
        if undelivered:
            break
        await asyncio.sleep(0.05)
    assert [(r.kind, r.status) for r in undelivered] == [("broadcast", "needs_template")]
    assert all(m.body != "Kerja bakti hari Minggu" for m in bots.twilio.messages)
    # The admins see it with the reason: `ktn-bot outbox failed`.
    config = tmp_path / "admin.toml"
    config.write_text("[http]\nport = 0\n")
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "--config", str(config), "outbox", "failed"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "KTN_DATABASE__URL": migrated_url},
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if "\tneeds_template\t" in x]
    assert "\tbroadcast\twhatsapp\t" in line and "templates.broadcast" in line
    assert str(undelivered[0].id) == line.split("\t")[0]
    assert RESIDENT.removeprefix("+") not in listed.stdout  # a person shows as a contact number
    assert "\tcontact " in line


async def test_out_of_order_and_repeated_status_callbacks_never_move_back(bots: Bots) -> None:
    bots.twilio.auto_deliver = False
    await bots.say(RESIDENT, "Halo")
    [msg] = bots.twilio.messages_to(RESIDENT)
    await bots.row_status(msg.sid, "sent")
    deliveries = await bots.twilio.deliver_status_callbacks(
        msg.sid, duplicate=True, out_of_order=True
    )
    assert [d.params["MessageStatus"] for d in deliveries] == [
        "delivered",
        "delivered",
        "sent",
        "sent",
    ]
    assert {d.status_code for d in deliveries} == {204}
    await bots.row_status(msg.sid, "delivered")

    async def callback(status: str, error: int | None = None) -> int:
        params = bots.twilio.callback_params(msg, StatusEvent(status, error))
        url = bots.url + "/whatsapp/status"
        headers = {"X-Twilio-Signature": bots.twilio.sign(url, params)}
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.post(url, data=params, headers=headers)).status_code

    assert await callback("read") == 204
    assert (await bots.row_status(msg.sid, "read")).status == "read"
    for late in ("delivered", "sent", "failed"):
        assert await callback(late) == 204
    row = await bots.row_status(msg.sid, "read")
    assert row.last_error is None

    # Another message ends undelivered; a "read" arriving after that is ignored.
    await bots.say(RESIDENT, "bantuan")
    second = bots.twilio.messages_to(RESIDENT)[-1]
    await bots.row_status(second.sid, "sent")
    msg = second
    assert await callback("undelivered", 63016) == 204
    assert await callback("read") == 204
    row = await bots.row_status(second.sid, "undelivered")
    assert row.last_error is not None and row.last_error.startswith("twilio 63016")


async def test_a_reply_over_1600_characters_arrives_as_two_messages_in_order(bots: Bots) -> None:
    await bots.say(RESIDENT, "Halo")  # the contact exists and is inside the window
    text = "Pengumuman RT 03: " + " ".join(f"kalimat-{i:04d}" for i in range(150))
    assert len(text) > 1601
    async with bots.sessions() as s:
        contact = await s.scalar(select(Contact))
        assert contact is not None
        s.add(
            Outbox(
                channel="whatsapp",
                chat_id=contact.external_id,
                contact_id=contact.id,
                kind="reply",
                payload={"reply": Reply(text).to_json()},
            )
        )
        await s.commit()
    first, second = (await bots.twilio.wait_for_messages(RESIDENT, count=3, timeout=10))[1:]
    assert len(first.body) <= 1600 and len(second.body) <= 1600
    assert first.body.endswith("\n(1/2)") and second.body.endswith("\n(2/2)")
    assert f"{first.body[:-6]} {second.body[:-6]}" == text
    await bots.row_status(second.sid, "delivered")


async def test_whatsapp_enabled_without_its_settings_does_not_start(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=migrated_url),
        whatsapp=WhatsAppSettings(enabled=True, from_number="+6281100000000"),
        http=HttpSettings(port=0),
    )
    with pytest.raises(StartupError, match=r"\[whatsapp\] public_url"):
        await run(settings, asyncio.Event())


async def add_coordinator(bots: Bots, channel: str, user_id: int, name: str) -> None:
    """A coordinator of Sumber Jaya who accepted the privacy notice."""
    async with bots.sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(
            Contact(
                channel=channel,
                external_id=user_id,
                display_name=name,
                role="coordinator",
                area_id=area.id,
                consent_at=utcnow(),
                language="id",
            )
        )
        await s.commit()


async def test_a_reminder_added_on_whatsapp_is_scheduled_at_once_as_on_telegram(
    bots: Bots,
) -> None:
    """Both channels go through the one seam: the scheduler has the new reminder's job by the time
    the coordinator is answered, not at its next periodic sync a minute later."""
    await add_coordinator(bots, "whatsapp", int(COORDINATOR[1:]), "Ibu Lurah Sri")
    await add_coordinator(bots, "telegram", TELEGRAM_COORDINATOR, "Pak Camat")
    bots.telegram.add_user(TELEGRAM_COORDINATOR, "Pak", "Camat")
    scheduler = await bots.schedules.running()
    assert not any(job.startswith("reminder:") for job in scheduler.jobs())

    line = "pengingat tambah setiap hari 19:00 | warga | Jangan lupa 3M ya"
    form = bots.twilio.inbound_text(COORDINATOR, line, "Ibu Lurah Sri")
    answer = await bots.post(form)  # Twilio's request ends once the seam is done
    assert answer.status_code == 200 and answer.text.endswith("<Response />")
    jobs = scheduler.jobs()
    assert "reminder:1" in jobs, jobs
    assert f"{jobs['reminder:1'].astimezone(ZoneInfo('Asia/Jakarta')):%H:%M}" == "19:00"
    [told] = await bots.twilio.wait_for_messages(COORDINATOR, count=1, timeout=10)
    assert "✅" in told.body and "19:00" in told.body

    bots.telegram.send_text(
        TELEGRAM_COORDINATOR,
        TELEGRAM_COORDINATOR,
        "/pengingat tambah setiap Senin 08:00 | grup | Kerja bakti jam 07.00",
    )
    await bots.telegram.wait_for_message(TELEGRAM_COORDINATOR, contains="✅", timeout=10)
    jobs = scheduler.jobs()
    assert "reminder:2" in jobs, jobs
    assert f"{jobs['reminder:2'].astimezone(ZoneInfo('Asia/Jakarta')):%a %H:%M}" == "Mon 08:00"


async def test_every_channel_is_counted_by_the_one_seam_and_a_failure_is_an_apology(
    bots: Bots, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ktn_updates_total and ktn_handling_seconds count each message once, whichever channel
    brought it, with what became of it; a WhatsApp message the core cannot process is answered
    with the apology in TwiML (Twilio does not retry), and sending it again works."""
    await bots.say(RESIDENT, "Halo")
    retried = bots.twilio.inbound_text(RESIDENT, "bantuan")
    await bots.deliver(RESIDENT, retried)
    assert (await bots.twilio.redeliver(bots.inbound_url, retried)).status_code == 200
    bots.telegram.add_user(TELEGRAM_RESIDENT, "Budi", "Santoso")
    bots.telegram.start(TELEGRAM_RESIDENT)
    await bots.telegram.wait_for_message(TELEGRAM_RESIDENT, contains="27 Tahun 2022", timeout=10)

    real = bot.inbound.process
    failures = [RuntimeError("database gone for a moment")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(bot.inbound, "process", flaky)
    before = len(bots.twilio.messages_to(RESIDENT))
    sorry = await bots.post(bots.twilio.inbound_text(RESIDENT, "LAPOR"))
    assert sorry.status_code == 200
    assert "<Message>Maaf, ada gangguan" in sorry.text and "kirim lagi" in sorry.text
    assert await bots.say(RESIDENT, "LAPOR")  # sending it again is answered
    assert len(bots.twilio.messages_to(RESIDENT)) == before + 1, "the apology was the answer"

    counted = await bots.metrics()
    updates = {
        (channel, result): counted.get(
            f'ktn_updates_total{{channel="{channel}",result="{result}"}}', 0.0
        )
        for channel in ("whatsapp", "telegram")
        for result in ("ok", "duplicate", "error")
    }
    assert updates == {
        ("whatsapp", "ok"): 3,
        ("whatsapp", "duplicate"): 1,
        ("whatsapp", "error"): 1,
        ("telegram", "ok"): 1,
        ("telegram", "duplicate"): 0,
        ("telegram", "error"): 0,
    }
    assert counted['ktn_handling_seconds_count{channel="whatsapp"}'] == 5
    assert counted['ktn_handling_seconds_count{channel="telegram"}'] == 1


# --- buttons: quick replies and lists inside the window ---------------------------------------


def titles(message: FakeMessage) -> list[str]:
    return [b.title for b in message.buttons]


async def test_a_resident_taps_through_the_report_flow(bots: Bots) -> None:
    notice = await bots.message(RESIDENT, "Halo")
    assert titles(notice) == ["Setuju", "Tidak"] and notice.list_button is None
    asked = await bots.tap(notice, "Setuju")
    assert "kelurahan/desa" in asked.body
    places = await bots.message(RESIDENT, "sumber jaya")
    assert places.list_button == "Pilih" and places.buttons[0].description == (
        "Sumber Jaya (Kampung Melayu, Kota Bengkulu)"
    )
    menu = await bots.tap(places, 1)
    assert "Sumber Jaya" in menu.body and "Lapor kejadian" in titles(menu)
    categories = await bots.tap(menu, "Lapor kejadian")
    assert categories.list_button == "Pilih"
    assert titles(categories) == [
        "Keamanan",
        "Kesehatan",
        "Sosial-Ekonomi",
        "Ketahanan Pangan",
        "Bencana",
        "Lainnya",
    ]
    told = await bots.tap(categories, "Kesehatan")
    assert told.body.startswith("Ceritakan")

    stale = await bots.tap(notice, "Tidak")  # the consent asked long ago
    assert stale.body == "Tombol ini sudah tidak berlaku. Silakan pakai pesan terbaru."
    await bots.say(RESIDENT, "Warga demam tinggi tiga hari")
    photo = await bots.message(RESIDENT, "Gang Kenanga 4")
    assert titles(photo) == ["Lewati"]
    anonymous = await bots.tap(photo, "Lewati")
    assert titles(anonymous) == ["Ya", "Tidak"]
    summary = await bots.tap(anonymous, "Tidak")
    assert "Sudah benar?" in summary.body and titles(summary) == ["Kirim", "Ubah", "Batal"]
    sent = await bots.tap(summary, "Kirim")
    report = await report_row(bots)
    assert report.ticket in sent.body and report.category == "kesehatan"
    assert not report.anonymous


async def test_a_tap_a_number_and_a_word_name_the_same_option(bots: Bots) -> None:
    """The same list answered three ways by three residents: the same next step, the same
    category; the contents made once serve all three."""
    residents = {"+6281200000001": "tap", "+6281200000002": "2", "+6281200000003": "KESEHATAN"}
    answers = []
    for number, how in residents.items():
        await onboard(bots, number)
        categories = await bots.message(number, "lapor")
        assert categories.list_button == "Pilih"
        if how == "tap":
            answer = await bots.tap(categories, "Kesehatan")
        else:
            answer = await bots.message(number, how)
        answers.append(answer.body)
        assert answer.body.startswith("Ceritakan"), (how, answer.body)
        await bots.say(number, "Banyak warga diare")
    assert len(set(answers)) == 1
    async with bots.sessions() as s:
        drafts = (await s.scalars(select(Conversation.draft))).all()
    assert [d["report"]["category"] for d in drafts] == ["kesehatan"] * 3
    # consent, the place list, the main menu, the categories: once each, not once a message
    assert bots.twilio.counters["content_created"] == 4
    assert bots.twilio.counters["content_requests"] == 4


async def test_an_officer_taps_the_alert_and_the_permissions_hold(bots: Bots) -> None:
    await register_officer(bots)
    await register_officer(bots, OTHER_OFFICER, WIYONO, name="Bripda Joko")
    officer_before = len(bots.twilio.messages_to(OFFICER))
    await file_report(bots)
    report = await report_row(bots)
    _photo, alert = await wait_alert(bots, OFFICER, officer_before)
    assert titles(alert) == ["Tangani", "Selesai", "Tolak"], "the photo first, then the buttons"
    assert [b.id for b in alert.buttons] == [
        f"claim:{report.id}",
        f"resolve:{report.id}",
        f"reject:{report.id}",
    ], "the same data as the Telegram group's buttons"
    assert f"Balas TANGANI {report.ticket} untuk menangani" in alert.body, "words too"

    # Another area's officer forges the tap: refused like the typed command; nothing changes.
    forged = bots.twilio.inbound_button(OTHER_OFFICER, f"claim:{report.id}", "Tangani")
    refused = await bots.deliver(OTHER_OFFICER, forged)
    assert refused.startswith("Maaf, hanya petugas atau koordinator wilayah laporan ini")
    nonsense = bots.twilio.inbound_button(OTHER_OFFICER, "claim:" + "9" * 300, "Tangani")
    assert (await bots.deliver(OTHER_OFFICER, nonsense)).startswith("Tombol ini sudah tidak")
    assert (await report_row(bots)).status == "new"

    resident_before = len(bots.twilio.messages_to(RESIDENT))
    claimed = await bots.tap(alert, "Tangani", name="Bripka Wati")
    assert claimed.body == f"👍 Anda menangani {report.ticket}."
    news = await wait_news(bots, RESIDENT, resident_before)
    assert "Bripka Wati" in news.body and "ditangani" in news.body
    # Selesai with a note by tap: tests/e2e/test_stories.py, on both channels.


# --- the lifecycle: a duplicate merged, closure with a required photo, reopened by the reporter


@pytest.fixture
async def bots_photo_required(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Bots]:
    """Keamanan reports need a photo of the result to be resolved."""
    categories = [
        CategorySettings(key=c.key, urgent=c.urgent, closure_photo="required")
        if c.key == "keamanan"
        else c
        for c in ReportSettings().categories
    ]
    reports = ReportSettings(categories=categories)
    async with running_bots(migrated_url, sessions, tmp_path, monkeypatch, reports) as started:
        yield started


async def file_another(bots: Bots, number: str, name: str) -> str:
    """A second resident reports the same kind of thing: offered to follow, files anew."""
    await onboard(bots, number, name=name)
    await bots.say(number, "LAPOR", name=name)
    offer = await bots.say(number, "1", name=name)
    assert "Ikut pantau" in offer, offer
    assert "Ceritakan" in await bots.say(number, "2", name=name)
    await bots.say(number, "Ada yang mencuri motor di dekat balai", name=name)
    await bots.say(number, "Dekat balai desa", name=name)
    await bots.say(number, "lewati", name=name)
    await bots.say(number, "tidak", name=name)
    confirmation = await bots.say(number, "kirim", name=name)
    assert "KTN-" in confirmation, confirmation
    return confirmation


async def test_merge_closure_photo_and_reopen_on_whatsapp(bots_photo_required: Bots) -> None:
    bots = bots_photo_required
    neighbour = STRANGER
    await register_officer(bots)
    officer_before = len(bots.twilio.messages_to(OFFICER))
    await file_report(bots)
    await wait_alert(bots, OFFICER, officer_before)
    officer_before = len(bots.twilio.messages_to(OFFICER))
    await file_another(bots, neighbour, "Pak Joko")
    await bots.twilio.wait_for_messages(OFFICER, count=officer_before + 1, timeout=10)  # its alert
    async with bots.sessions() as s:
        main, dup = (await s.scalars(select(Report).order_by(Report.id))).all()
    group_alert = await bots.telegram.wait_for_message(GROUP, contains=dup.ticket, since=0)

    # The WhatsApp officer merges the second report into the first by typing.
    before = len(bots.twilio.messages_to(neighbour))
    answer = await bots.say(OFFICER, f"gabung {dup.ticket} {main.ticket}", name="Bripka Wati")
    assert answer == (
        f"🔗 {dup.ticket} digabung ke {main.ticket}. "
        f"Pelapor dan pemantaunya kini mengikuti {main.ticket}."
    )
    news = await wait_news(bots, neighbour, before)
    assert f"digabung oleh Bripka Wati dengan laporan {main.ticket}" in news.body
    edited = await bots.telegram.wait_for_edit(GROUP, group_alert.message_id, since=0)
    assert f"🔗 Digabung ke {main.ticket} oleh Bripka Wati" in edited.content
    assert edited.button_data() == []

    # Selesai needs a photo of the result: the note alone is kept and the photo asked for.
    asked = await bots.say(OFFICER, f"selesai {main.ticket} Pencuri tertangkap", name="Bripka Wati")
    assert f"Catatan untuk {main.ticket} sudah kami simpan. Sekarang kirim foto" in asked
    resident_before = len(bots.twilio.messages_to(RESIDENT))
    neighbour_before = len(bots.twilio.messages_to(neighbour))
    result = b"\xff\xd8\xff\xe0 the recovered motorbike"
    photo = bots.twilio.inbound_media(OFFICER, result, "image/jpeg", profile_name="Bripka Wati")
    assert (await bots.deliver(OFFICER, photo)).startswith(f"✅ {main.ticket} selesai")

    # The reporter gets the photo, then the note with Sudah beres / Belum.
    got = await bots.twilio.wait_for_messages(RESIDENT, count=resident_before + 2, timeout=10)
    photo_message, with_buttons = got[resident_before : resident_before + 2]
    assert len(photo_message.media_urls) == 1
    async with httpx.AsyncClient(trust_env=False) as client:  # the signed link Twilio fetches
        assert (await client.get(photo_message.media_urls[0])).content == result
    assert "Pencuri tertangkap" in with_buttons.body
    assert titles(with_buttons) == ["Sudah beres", "Belum"]
    # The merged report's reporter follows the main one now: the news, with the photo.
    followed = await wait_news(bots, neighbour, neighbour_before)
    assert f"Laporan {main.ticket} sudah selesai" in followed.body
    assert len(followed.media_urls) == 1 and not followed.buttons

    # "Belum": why? Then back to the officer, as reopened.
    officer_before = len(bots.twilio.messages_to(OFFICER))
    why = await bots.tap(with_buttons, "Belum")
    assert f"Apa yang belum selesai pada {main.ticket}?" in why.body
    done = await bots.say(RESIDENT, "Motornya belum dikembalikan")
    assert f"🔁 Laporan {main.ticket} dibuka lagi" in done
    _photo, alert = await wait_alert(bots, OFFICER, officer_before)
    assert alert.body.startswith("🔁 DIBUKA LAGI: pelapor menyatakan belum selesai.")
    assert "Alasan: Motornya belum dikembalikan" in alert.body
    async with bots.sessions() as s:
        reopened = await s.get(Report, main.id)
    assert reopened is not None and reopened.status == "reopened"
    again = await bots.telegram.wait_for_message(GROUP, contains="DIBUKA LAGI", since=0)
    assert main.ticket in again.content

    # A second tap on the old message changes nothing.
    second = await bots.tap(with_buttons, "Belum")
    assert second.body == (
        f"Laporan {main.ticket} sudah dibuka lagi dan sedang menunggu petugas. Terima kasih."
    )
