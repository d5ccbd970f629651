"""The stories every channel must tell, each run on Telegram and on WhatsApp from this one suite
against the real `run` wiring (webhooks, the outbox, both fakes over HTTP): a feature added to
one channel and not the other fails here.

The cast per channel: a resident of Sumber Jaya; an officer of Sumber Jaya, who reads alerts in
the area's Telegram group (Telegram) or 1:1 (WhatsApp: no group chats) and writes notes in their
own chat; a coordinator of Sumber Jaya. Staff register with an invite code, as in real life.
What is channel-specific (signatures, the 24-hour window and templates, the Content API's
buttons, Telegram's flood limits, webhook secrets) stays in the single-channel tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import ProblemSettings
from handlers import problems as problem_chat
from handlers.context import Context
from handlers.permissions import role_of
from storage import problems as problem_store
from storage import reports as report_store
from storage.models import Area, Contact, PatrolRota, Report
from storage.types import Role, utcnow
from tests.support.chats import SUMBER_JAYA, core_config, make_invite
from tests.support.live import GROUP, Live, live_run
from tests.support.stories import Chat, Said, Schedules, TelegramChat, WhatsAppChat

WIB = ZoneInfo("Asia/Jakarta")
PIN = (-3.7956, 102.2592)
CHANNELS = ("telegram", "whatsapp")
TICKET = re.compile(r"KTN-[0-9A-Z]{6}")
PHOTO = b"\xff\xd8\xff\xe0" + b"pagar balai desa roboh ke jalan " * 40


@dataclass
class Cast:
    """The people of one channel's story, and the run they talk to."""

    channel: str
    live: Live
    schedules: Schedules
    resident: Chat
    alerts: Chat  # where the officer reads alerts: the group, or their own WhatsApp chat
    officer: Chat  # the officer's own chat with the bot
    coordinator: Chat
    neighbour: Chat  # a second resident (the ronda member)

    async def register(self, chat: Chat, role: str) -> None:
        """Staff join with an invite code and consent."""
        code = await make_invite(self.live.sessions, role, SUMBER_JAYA)
        await chat.say(f"/daftar {code}", "Apakah Anda setuju?")
        await chat.tap("Setuju")

    async def staff(self) -> None:
        """The officer and the coordinator of Sumber Jaya."""
        await self.register(self.officer, "officer")
        await self.register(self.coordinator, "coordinator")


async def join(resident: Chat) -> None:
    """A newcomer: the privacy notice, consent, their village by name."""
    await resident.say("Halo", "Apakah Anda setuju?")
    await resident.tap("Setuju", "kelurahan/desa")
    await resident.say("Sumber Jaya", "Pilih kelurahan/desa")
    await resident.tap("Sumber Jaya", "Sumber Jaya")


async def report(resident: Chat, text: str, *, anonymous: bool = False, send: bool = True) -> Said:
    """/lapor, a category, the story, a pin, a photo, name shown or not, then Kirim (or Batal)."""
    await resident.say("/lapor", "Kejadiannya tentang apa?")
    await resident.tap("Keamanan", "Ceritakan")
    await resident.say(text, "Di mana")
    await resident.location(*PIN, expect="Ada foto")
    await resident.photo(PHOTO, expect="anonim")
    summary = await resident.tap("Ya" if anonymous else "Tidak")
    assert "Kirim" in summary.buttons and "Batal" in summary.buttons, summary
    return await resident.tap("Kirim" if send else "Batal")


def ticket_of(said: Said) -> str:
    found = TICKET.search(said.text)
    assert found, said.text
    return found.group()


@pytest.fixture(params=CHANNELS)
async def cast(
    request: pytest.FixtureRequest,
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Cast]:
    schedules = Schedules()
    schedules.watch(monkeypatch)
    # Problem actions' reminders are looked for every second (the leader's sweep, as deployed).
    problems = ProblemSettings(check_seconds=1)
    async with live_run(migrated_url, sessions, tmp_path, problems=problems) as live:
        if request.param == "telegram":
            tg = live.telegram
            people = {5101: "Ratna", 5102: "Andi", 5103: "Sri", 5104: "Dewi"}
            for user_id, name in people.items():
                tg.add_user(user_id, name)
                tg.get_bot().started.add(user_id)  # they opened the bot before
            yield Cast(
                "telegram",
                live,
                schedules,
                resident=TelegramChat(tg, 5101, 5101, "Ratna"),
                alerts=TelegramChat(tg, GROUP, 5102, "Andi"),
                officer=TelegramChat(tg, 5102, 5102, "Andi"),
                coordinator=TelegramChat(tg, 5103, 5103, "Sri"),
                neighbour=TelegramChat(tg, 5104, 5104, "Dewi"),
            )
        else:
            wa, hook = live.twilio, live.whatsapp_hook
            officer = WhatsAppChat(wa, hook, "+6281311112222", "Andi")
            yield Cast(
                "whatsapp",
                live,
                schedules,
                resident=WhatsAppChat(wa, hook, "+6281377712345", "Ratna"),
                alerts=officer,
                officer=officer,
                coordinator=WhatsAppChat(wa, hook, "+6281244445555", "Sri"),
                neighbour=WhatsAppChat(wa, hook, "+6281377700000", "Dewi"),
            )


async def test_a_report_with_photo_and_pin_is_claimed_and_resolved_with_news_each_time(
    cast: Cast,
) -> None:
    await cast.staff()
    await join(cast.resident)
    alerts_before = cast.alerts.mark()
    confirmation = await report(cast.resident, "Pagar balai desa roboh")
    ticket = ticket_of(confirmation)
    assert "Nomor tiket" in confirmation.text

    # The officer gets the alert with the resident's photo and the buttons to act on it.
    alert = await cast.alerts.news(ticket, alerts_before)
    assert "Pagar balai desa roboh" in alert.text and "Ratna" in alert.text
    assert alert.buttons[:3] == ["Tangani", "Selesai", "Tolak"]
    # Duplikat and Masalah… join them in a group; a WhatsApp officer 1:1 types GABUNG and
    # MASALAH (a fourth button would turn the quick replies into a list).
    assert alert.buttons[3:] in ([], ["Duplikat", "Masalah…"])
    await cast.alerts.news("", alerts_before, photo=True)

    news_from = cast.resident.mark()
    await cast.alerts.press("Tangani")
    claimed = await cast.resident.news(f"Laporan {ticket} sedang ditangani", news_from)
    assert "Andi" in claimed.text

    await cast.alerts.press("Selesai")
    await cast.officer.news("Tulis catatan singkat", 0)
    await cast.officer.say("Pagar sudah diperbaiki bersama warga", ticket)
    done = await cast.resident.news("sudah selesai", news_from)
    assert "Pagar sudah diperbaiki bersama warga" in done.text and "Andi" in done.text
    async with cast.live.sessions() as s:
        row = await s.scalar(select(Report).where(Report.ticket == ticket))
    assert row is not None and (row.status, row.latitude, row.longitude) == ("resolved", *PIN)

    status = await cast.resident.say(f"/status {ticket}", ticket)
    assert "selesai" in status.text.lower()


async def test_a_cancelled_draft_files_nothing(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    alerts_before = cast.alerts.mark()
    cancelled = await report(cast.resident, "Salah kirim", send=False)
    assert "dibatalkan" in cancelled.text.lower(), cancelled.text
    async with cast.live.sessions() as s:
        assert (await s.scalars(select(Report))).all() == []
    assert not [s for s in await cast.alerts.seen(alerts_before) if "Salah kirim" in s.text]


async def test_an_anonymous_reporter_is_hidden_from_the_officers(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    alerts_before = cast.alerts.mark()
    ticket = ticket_of(await report(cast.resident, "Ada pencurian kabel", anonymous=True))
    alert = await cast.alerts.news(ticket, alerts_before)
    assert "anonim" in alert.text
    await cast.alerts.press("Tangani")  # the alert changes; no version names the reporter
    await cast.resident.news("sedang ditangani")
    seen_by_officers = await cast.alerts.everything()
    for secret in ("Ratna", "5101", "6281377712345"):
        assert secret not in seen_by_officers


async def test_a_coordinators_announcement_reaches_the_residents(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    before = cast.resident.mark()
    await cast.coordinator.say("/umumkan", "Untuk siapa?")
    await cast.coordinator.tap("Warga", "Tulis isi pengumuman")
    preview = await cast.coordinator.say("Kerja bakti Minggu pagi di balai desa", "Akan dikirim")
    assert "Akan dikirim ke 1 penerima (Warga)" in preview.text
    sent = await cast.coordinator.tap("Kirim", "Pengumuman #")
    assert "dikirim ke 1 penerima" in sent.text
    announcement = await cast.resident.news("Kerja bakti Minggu pagi", before)
    assert "Pengumuman" in announcement.text


async def test_a_ronda_member_answers_tonights_reminder_hadir(cast: Cast) -> None:
    await cast.staff()
    await join(cast.neighbour)
    added = await cast.coordinator.say("/ronda tim Pos Melati: Andi", "Pos Melati")
    assert "Pos Melati" in added.text
    await cast.neighbour.say("/ronda ikut 1", "Pos Melati")
    due = f"{(utcnow() - timedelta(minutes=2)).astimezone(WIB):%H:%M}"  # came 2 minutes ago
    assert "✅" in (await cast.coordinator.say(f"/ronda jadwal harian {due}")).text
    async with cast.live.sessions() as s:
        yesterday = (utcnow().astimezone(WIB) - timedelta(days=1)).date().isoformat()
        await s.execute(update(PatrolRota).values(start_date=yesterday))
        await s.commit()
    await (await cast.schedules.running()).run_due()

    turn = await cast.neighbour.news("giliran ronda Anda")
    assert any("Hadir" in label for label in turn.buttons), turn
    present = await cast.neighbour.tap("✅ Hadir", "kehadiran Anda di ronda")
    assert "tercatat" in present.text
    overview = await cast.coordinator.say("/ronda", "Pos Melati")
    assert re.search(r"• Dewi: ✅ hadir \d\d:\d\d WIB", overview.text), overview.text


async def seed_earlier_reports(cast: Cast, count: int) -> list[str]:
    """Reports the resident filed on earlier days (Keamanan, Sumber Jaya): a recurring problem."""
    async with cast.live.sessions() as s:
        area = await s.scalar(select(Area).where(Area.code == SUMBER_JAYA))
        reporter = await s.scalar(select(Contact).where(Contact.display_name == "Ratna"))
        assert area is not None and reporter is not None
        tickets = []
        for days in range(count, 0, -1):
            when = utcnow() - timedelta(days=days + 1)
            report = Report(
                ticket=await report_store.new_ticket(s),
                category="keamanan",
                description=f"Motor hilang di gang masjid ({days})",
                area_id=area.id,
                reporter_id=reporter.id,
                status="resolved",
                created_at=when,
                updated_at=when,
            )
            s.add(report)
            tickets.append(report.ticket)
        await s.commit()
    return tickets


async def test_recurring_reports_become_a_problem_worked_through_sara(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    earlier = await seed_earlier_reports(cast, 3)

    # /masalah: the suggestion (three Keamanan reports in 30 days), accepted with one tap.
    listed = await cast.officer.say("/masalah", "Masalah di Sumber Jaya")
    assert "3 laporan Keamanan di Sumber Jaya dalam 30 hari terakhir" in listed.text
    assert listed.buttons[:2] == ["Terima 1", "Abaikan 1"]
    accepted = await cast.officer.tap("Terima 1", "dibuat")
    assert "Masalah #1 dibuat: Keamanan berulang di Sumber Jaya (3 laporan)" in accepted.text

    # A new report's alert: "Masalah…" (the group's button, or MASALAH typed 1:1) adds it.
    alerts_before = cast.alerts.mark()
    ticket = ticket_of(await report(cast.resident, "Motor hilang lagi di gang masjid"))
    alert = await cast.alerts.news(ticket, alerts_before)
    mark = cast.alerts.mark()
    if "Masalah…" in alert.buttons:
        await cast.alerts.press("Masalah…")
    else:
        await cast.alerts.send(f"MASALAH {ticket}")
    menu = await cast.alerts.wait(mark, "ke masalah mana")
    assert "#1 Keamanan berulang di Sumber Jaya" in menu.text
    assert menu.buttons == ["Masalah #1", "Masalah baru"]
    added = await cast.alerts.tap("Masalah #1", "ditambahkan")
    assert f"{ticket} ditambahkan ke masalah #1" in added.text

    # Analysis, then the response: the resident hears of it, naming nobody.
    shown = await cast.officer.say("/masalah 1", "Tahap: Pemindaian")
    assert all(t in shown.text for t in [*earlier, ticket])
    news_from = cast.resident.mark()
    await cast.officer.tap("Lanjut ke Analisis", "tahap Analisis")
    await cast.officer.tap("Lanjut ke Respons", "tahap Respons")
    told = await cast.resident.news("masalah berulang di Sumber Jaya", news_from)
    assert ticket in told.text and "Andi" not in told.text

    # An action for the officer (as the desk adds it): the leader reminds them; "selesai".
    async with cast.live.sessions() as s:
        staff = (await s.scalars(select(Contact).where(Contact.role != "resident"))).all()
        officer = next(c for c in staff if role_of(c) is Role.OFFICER)
        coordinator = next(c for c in staff if role_of(c) is Role.COORDINATOR)
        problem = await problem_store.get(s, 1)
        assert problem is not None
        await problem_chat.add_action(
            s,
            Context(core_config(), now=utcnow()),
            coordinator,
            problem,
            "Pasang lampu di gang masjid",
            owner=officer,
            due_at=utcnow() + timedelta(hours=2),
        )
        await s.commit()
    reminder = await cast.officer.news("Pengingat tindakan untuk masalah #1")
    assert "Pasang lampu di gang masjid" in reminder.text
    done = await cast.officer.say("selesai", "tercatat selesai")
    assert "Pasang lampu di gang masjid" in done.text


async def test_a_resident_receives_their_own_data_as_a_file(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    ticket = ticket_of(await report(cast.resident, "Pagar balai desa roboh"))
    before = cast.resident.mark()
    summary = await cast.resident.say("/dataku", "Data pribadi Anda di KTN")
    assert "Ratna" in summary.text and ticket in summary.text
    await cast.resident.news("Data pribadi Anda (JSON)", before)
    [document] = await cast.resident.documents(before)
    data = json.loads(document)
    assert data["contact"]["name"] == "Ratna" and data["consent"]["given_at"]
    [mine] = data["reports"]
    assert (mine["ticket"], mine["description"]) == (ticket, "Pagar balai desa roboh")
    assert mine["trail"][0]["kind"] == "created" and mine["files"][0]["kind"] == "photo"


async def test_hapusdata_leaves_the_officers_the_report_without_the_person(cast: Cast) -> None:
    await cast.staff()
    await join(cast.resident)
    await join(cast.neighbour)
    ticket = ticket_of(await report(cast.resident, "Pagar balai desa roboh"))
    await cast.neighbour.say(f"/status {ticket}", ticket)  # not theirs: not found
    await cast.resident.say("/hapusdata", "Hapus data pribadi Anda?")
    await cast.resident.tap("Ya", "sudah dihapus")

    story = await cast.officer.say(f"/status {ticket}", ticket)
    assert "Isi: dihapus atas permintaan pelapor" in story.text
    assert "Pagar balai desa roboh" not in story.text
    await cast.officer.say("/bahasa en")
    story = await cast.officer.say(f"/status {ticket}", ticket)
    assert "Story: deleted at the reporter's request" in story.text
    async with cast.live.sessions() as s:
        kept = await s.scalar(select(Report).where(Report.ticket == ticket))
    assert kept is not None and kept.reporter_id is None and kept.anonymous
    again = await cast.resident.say("Halo", "Apakah Anda setuju?")  # a newcomer now
    assert "Ratna" not in again.text
