"""A report's lifecycle as officers and reporters live it, on both channels: merging a
duplicate, the reporter's "Sudah beres" / "Belum" (reopening), proof of closure, the trail in
/status, and what Open311, exports and recaps make of the new statuses."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import Category, CoreConfig
from handlers.context import Context
from handlers.open311 import request_views
from handlers.recap import Period, compute_stats, recap_text
from handlers.states import State
from handlers.types import Channel, Media, MediaKind, MediaProblem
from storage import conversations
from storage.areas import get_by_code
from storage.exports import report_rows, to_csv
from storage.models import Contact, Outbox, Report, ReportEvent, ReportFollower, ReportMedia
from tests.support.chats import (
    ALERT_GROUP,
    SUMBER_JAYA,
    WIYONO,
    FakeChat,
    core_config,
    link_group,
    load_areas,
    texts,
)

CHANNELS = [Channel.TELEGRAM, Channel.WHATSAPP]
CLOSURE_PHOTO = Media(MediaKind.PHOTO, "sha256:" + "ab" * 32, "image/jpeg", 120_000)


def config_with(closure_photo: str = "optional", reopen_days: int = 7) -> CoreConfig:
    base = core_config()
    categories = tuple(
        dataclasses.replace(c, closure_photo=closure_photo) if c.key == "keamanan" else c
        for c in base.categories
    )
    return dataclasses.replace(base, categories=categories, reopen_days=reopen_days)


@dataclasses.dataclass
class People:
    reporter: FakeChat
    neighbour: FakeChat
    officer: FakeChat
    elsewhere: FakeChat  # an officer of Wiyono
    wiyono_resident: FakeChat
    channel: Channel

    def all(self) -> list[FakeChat]:
        return [self.reporter, self.neighbour, self.officer, self.elsewhere, self.wiyono_resident]


async def people(
    sessions: async_sessionmaker[AsyncSession], channel: Channel, config: CoreConfig
) -> People:
    """Sumber Jaya's Telegram officers' group is linked; everybody writes on ``channel``."""
    await load_areas(sessions)
    await link_group(sessions)
    now = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)

    def chat(user_id: int, name: str) -> FakeChat:
        return FakeChat(
            sessions, config=config, channel=channel, user_id=user_id, name=name, now=now
        )

    cast = People(
        reporter=chat(1001, "Budi Santoso"),
        neighbour=chat(1002, "Siti Aminah"),
        officer=chat(4001, "Bripka Andi"),
        elsewhere=chat(4002, "Brigpol Wayan"),
        wiyono_resident=chat(1003, "Made"),
        channel=channel,
    )
    await cast.reporter.onboard()
    await cast.neighbour.onboard()
    await cast.wiyono_resident.onboard(WIYONO)
    await cast.officer.enrol("officer", SUMBER_JAYA)
    await cast.elsewhere.enrol("officer", WIYONO)
    return cast


def tick(cast: People, **delta: float) -> None:
    for person in cast.all():
        person.advance(**delta)


async def file(chat: FakeChat, description: str = "Ada maling motor", **kw: Any) -> tuple[int, str]:
    out = await chat.file_report("keamanan", description, **kw)
    assert out.recorded.filed is not None, texts(out)
    return int(out.recorded.filed["report_id"]), str(out.recorded.filed["ticket"])


async def report_of(sessions: async_sessionmaker[AsyncSession], report_id: int) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
        assert report is not None
        return report


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def contact_id(chat: FakeChat) -> int:
    async with chat.sessions() as session:
        found = await session.scalar(
            select(Contact.id).where(
                Contact.external_id == chat.user_id, Contact.channel == str(chat.channel)
            )
        )
        assert found is not None
        return int(found)


async def news_to(chat: FakeChat, report_id: int) -> list[Outbox]:
    found = await rows(chat.sessions, Outbox)
    return [
        r
        for r in found
        if r.kind == "status" and r.chat_id == chat.user_id and r.report_id == report_id
    ]


async def resolve(cast: People, ticket: str, note: str = "Pelaku sudah diamankan") -> None:
    """The officer resolves: in Sumber Jaya's group on Telegram (then the note privately),
    typed on WhatsApp."""
    officer = cast.officer
    if cast.channel is Channel.TELEGRAM:
        report = await reports_by_ticket(officer, ticket)
        out = await officer.in_group().send(button=f"resolve:{report.id}")
        assert out.notice == "Cek chat pribadi untuk menulis catatan."
        out = await officer.send(note)
    else:
        out = await officer.send(f"selesai {ticket} {note}")
    assert f"{ticket} selesai" in texts(out), texts(out)


async def reports_by_ticket(chat: FakeChat, ticket: str) -> Report:
    async with chat.sessions() as session:
        found = await session.scalar(select(Report).where(Report.ticket == ticket))
        assert found is not None
        return found


@pytest.fixture(params=CHANNELS, ids=lambda c: str(c))
def channel(request: pytest.FixtureRequest) -> Channel:
    return Channel(request.param)


# --- merge into a duplicate ------------------------------------------------------------------


async def test_an_officer_merges_a_duplicate_and_its_people_follow_the_other_report(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    main_id, main = await file(cast.neighbour, "Motor hilang di depan masjid")
    dup_id, dup = await file(cast.reporter, "Maling motor di masjid tadi pagi")
    follower = FakeChat(
        sessions, config=cast.reporter.config, channel=channel, user_id=1009, name="Follower"
    )
    follower.now = cast.reporter.now
    await follower.onboard()
    async with sessions() as session:
        session.add(
            ReportFollower(
                report_id=dup_id, contact_id=await contact_id(follower), created_at=follower.now
            )
        )
        await session.commit()
    tick(cast, minutes=5)
    if channel is Channel.TELEGRAM:  # the group alert's Duplikat, then the ticket privately
        out = await cast.officer.in_group().send(button=f"merge:{dup_id}")
        assert out.notice == "Cek chat pribadi untuk menulis catatan."
        [question] = [
            r for r in await rows(sessions, Outbox) if r.kind == "notice" and r.report_id == dup_id
        ]
        assert f"{dup} duplikat dari laporan mana?" in question.payload["reply"]["text"]
        out = await cast.officer.send(main.lower())
    else:  # typed, as WhatsApp officers work
        out = await cast.officer.send(f"gabung {dup} {main}")
    assert f"🔗 {dup} digabung ke {main}" in texts(out), texts(out)

    merged = await report_of(sessions, dup_id)
    assert (merged.status, merged.duplicate_of_id) == ("duplicate", main_id)
    events = [e for e in await rows(sessions, ReportEvent) if e.kind in ("duplicate", "merged_in")]
    officer_id = await contact_id(cast.officer)
    assert [(e.report_id, e.kind, e.actor_id, e.note) for e in events] == [
        (dup_id, "duplicate", officer_id, main),
        (main_id, "merged_in", officer_id, dup),
    ]
    [news] = await news_to(cast.reporter, dup_id)
    assert (
        f"Laporan {dup} digabung oleh Bripka Andi dengan laporan {main}"
        in (news.payload["reply"]["text"])
    )
    assert f"/status {main}" in news.payload["reply"]["text"]
    assert await news_to(follower, dup_id)  # a follower of the duplicate is told too
    if channel is Channel.TELEGRAM:  # the group's alert of the duplicate shows the merge
        [edit] = [
            r
            for r in await rows(sessions, Outbox)
            if r.kind == "alert_edit" and r.report_id == dup_id and r.chat_id == ALERT_GROUP
        ]
        assert f"🔗 Digabung ke {main} oleh Bripka Andi" in edit.payload["reply"]["text"]
        assert edit.payload["reply"]["options"] == []

    # From now on the duplicate's reporter and followers get the other report's news.
    tick(cast, minutes=30)
    await resolve(cast, main)
    for person in (cast.reporter, follower):
        [resolved] = await news_to(person, main_id)
        assert (
            f"Laporan {main} sudah selesai ditangani oleh Bripka Andi"
            in (resolved.payload["reply"]["text"])
        )
        assert resolved.payload["reply"]["options"] == []  # only its own reporter answers
    # The duplicate's reporter may look at the report they follow now, and is shown where.
    out = await cast.reporter.send(f"/status {dup}")
    assert f"Digabung dengan {main}" in texts(out)
    out = await cast.reporter.send(f"/status {main}")
    assert "Status: selesai" in texts(out)


async def test_merging_checks_role_and_area_of_both_reports(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    main_id, main = await file(cast.neighbour)
    dup_id, dup = await file(cast.reporter)
    _, wiyono = await file(cast.wiyono_resident)
    before = len(await rows(sessions, ReportEvent))

    out = await cast.reporter.send(f"gabung {dup} {main}")
    assert texts(out).startswith("Maaf, perintah ini hanya untuk petugas")
    out = await cast.elsewhere.send(f"gabung {dup} {main}")  # not his area
    assert texts(out).startswith("Maaf, hanya petugas atau koordinator wilayah")
    out = await cast.officer.send(f"duplikat {dup} {wiyono}")  # the target is not his area
    assert f"Maaf, {wiyono} bukan laporan wilayah Anda" in texts(out)
    out = await cast.officer.send(f"gabung {dup} {dup}")
    assert "tidak bisa digabung dengan dirinya sendiri" in texts(out)
    out = await cast.officer.send(f"gabung {dup} KTN-ZZZZZZ")
    assert "Tiket KTN-ZZZZZZ tidak ditemukan." in texts(out)
    assert (await report_of(sessions, dup_id)).status == "new"
    assert len(await rows(sessions, ReportEvent)) == before

    out = await cast.officer.send(f"gabung {dup} {main}")
    assert "digabung ke" in texts(out)
    out = await cast.officer.send(f"gabung {main} {dup}")  # into a duplicate: say where to
    assert f"{dup} sendiri sudah digabung ke {main}" in texts(out)
    out = await cast.officer.send(f"gabung {dup} {main}")  # a second time: already done
    assert "Anda sudah menangani ini (digabung dengan laporan lain)." in texts(out)
    assert (await report_of(sessions, main_id)).status == "new"


async def test_merge_typed_in_the_group(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await people(sessions, Channel.TELEGRAM, config_with())
    _, main = await file(cast.neighbour)
    dup_id, dup = await file(cast.reporter)
    out = await cast.officer.in_group().send(f"/gabung {dup} {main}")
    assert f"🔗 {dup} digabung ke {main}" in texts(out)
    assert (await report_of(sessions, dup_id)).status == "duplicate"


# --- the reporter's answers: Sudah beres / Belum ---------------------------------------------


async def test_belum_reopens_the_report_and_it_goes_back_to_the_officers(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    report_id, ticket = await file(cast.reporter)
    await resolve(cast, ticket)
    [news] = await news_to(cast.reporter, report_id)
    reply = news.payload["reply"]
    assert reply["options"] == [
        ["Sudah beres", f"fixed:{report_id}"],
        ["Belum", f"notfixed:{report_id}"],
    ]
    if channel is Channel.WHATSAPP:  # buttons only inside the 24-hour window: words too
        assert f"BELUM {ticket} alasan" in reply["text"]
    alerts_before = len([r for r in await rows(sessions, Outbox) if r.kind == "alert"])

    tick(cast, days=2)
    out = await cast.reporter.send(button=f"notfixed:{report_id}")
    assert out.recorded.state == State.REOPEN_REASON.value
    assert f"Apa yang belum selesai pada {ticket}?" in texts(out)
    out = await cast.reporter.send("Motornya dicuri lagi semalam")
    assert f"🔁 Laporan {ticket} dibuka lagi" in texts(out)
    assert out.recorded.state == State.IDLE.value

    report = await report_of(sessions, report_id)
    assert report.status == "reopened" and report.closed_at is None
    assert report.assignee_id == await contact_id(cast.officer)  # back to the same officer
    [event] = [e for e in await rows(sessions, ReportEvent) if e.kind == "reopened"]
    assert (event.from_status, event.to_status, event.note) == (
        "resolved",
        "reopened",
        "Motornya dicuri lagi semalam",
    )
    assert event.actor_id == await contact_id(cast.reporter)
    again = [r for r in await rows(sessions, Outbox) if r.kind == "alert"][alerts_before:]
    assert again, "the officers get the report again"
    for alert in again:
        text = alert.payload["reply"]["text"]
        assert text.startswith("🔁 DIBUKA LAGI: pelapor menyatakan belum selesai.")
        assert "Alasan: Motornya dicuri lagi semalam" in text
        assert [o[1] for o in alert.payload["reply"]["options"]][:3] == [
            f"claim:{report_id}",
            f"resolve:{report_id}",
            f"reject:{report_id}",
        ]
    # The officer can resolve it again; the reporter gets new news and may answer again.
    tick(cast, hours=3)
    await resolve(cast, ticket, "Motor sudah ditemukan")
    latest = (await news_to(cast.reporter, report_id))[-1]
    assert "Motor sudah ditemukan" in latest.payload["reply"]["text"]
    assert latest.payload["reply"]["options"][0] == ["Sudah beres", f"fixed:{report_id}"]


async def test_belum_after_the_window_is_refused_politely(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with(reopen_days=3))
    report_id, ticket = await file(cast.reporter)
    await resolve(cast, ticket)
    tick(cast, days=3, minutes=1)
    for attempt in (
        cast.reporter.send(button=f"notfixed:{report_id}"),
        cast.reporter.send(f"belum {ticket} masih ada"),
    ):
        out = await attempt
        assert f"Maaf, {ticket} selesai lebih dari 3 hari yang lalu" in texts(out)
        assert "/lapor" in texts(out)
        assert out.recorded.state == State.IDLE.value
    assert (await report_of(sessions, report_id)).status == "resolved"
    assert not [e for e in await rows(sessions, ReportEvent) if e.kind == "reopened"]


async def test_a_second_press_of_sudah_beres_or_belum_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    first_id, first = await file(cast.reporter, "Lampu jalan mati")
    second_id, second = await file(cast.reporter, "Pagar roboh")
    await resolve(cast, first)
    await resolve(cast, second)

    out = await cast.reporter.send(button=f"fixed:{first_id}")
    assert f"{first} kami catat sudah beres" in texts(out)
    for press in (f"fixed:{first_id}", f"notfixed:{first_id}"):
        out = await cast.reporter.send(button=press)
        assert f"Jawaban Anda untuk {first} sudah kami catat: sudah beres." in texts(out)
    assert len([e for e in await rows(sessions, ReportEvent) if e.kind == "confirmed"]) == 1
    assert (await report_of(sessions, first_id)).status == "resolved"

    out = await cast.reporter.send(f"belum {second} masih roboh")  # typed, with the reason
    assert f"Laporan {second} dibuka lagi" in texts(out)
    outbox_before = len(await rows(sessions, Outbox))
    for press in (f"notfixed:{second_id}", f"fixed:{second_id}"):
        out = await cast.reporter.send(button=press)
        assert f"Laporan {second} sudah dibuka lagi" in texts(out)
    sent = [r for r in (await rows(sessions, Outbox))[outbox_before:] if r.kind != "reply"]
    assert sent == []  # nobody else is told anything
    assert len([e for e in await rows(sessions, ReportEvent) if e.kind == "reopened"]) == 1


async def test_only_the_reporter_answers(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    report_id, ticket = await file(cast.reporter)
    await resolve(cast, ticket)
    out = await cast.neighbour.send(button=f"notfixed:{report_id}")
    assert "hanya pelapor yang bisa menjawab" in texts(out)
    out = await cast.officer.send(f"beres {ticket}")
    assert "hanya pelapor yang bisa menjawab" in texts(out)
    assert (await report_of(sessions, report_id)).status == "resolved"


# --- proof of closure --------------------------------------------------------------------------


async def test_closure_with_a_required_photo(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with(closure_photo="required"))
    report_id, ticket = await file(cast.reporter)
    officer = cast.officer
    if channel is Channel.TELEGRAM:
        await officer.in_group().send(button=f"resolve:{report_id}")
        [question] = [r for r in await rows(sessions, Outbox) if r.kind == "notice"]
        assert "foto wajib untuk jenis laporan ini" in question.payload["reply"]["text"]
        out = await officer.send("Pelaku sudah diamankan")  # a note alone is not enough
    else:
        out = await officer.send(f"selesai {ticket} Pelaku sudah diamankan")
    assert f"Catatan untuk {ticket} sudah kami simpan. Sekarang kirim foto" in texts(out)
    assert out.recorded.state == State.STAFF_NOTE.value
    assert (await report_of(sessions, report_id)).status == "new"

    # A photo over the size limit is refused with the limit; nothing changes.
    too_big = Media(
        MediaKind.PHOTO, "big", "image/jpeg", problem=MediaProblem.TOO_LARGE, limit=20 * 1024 * 1024
    )
    out = await officer.send(media=[too_big])
    assert "terlalu besar (paling besar 20 MB)" in texts(out)
    assert "Sekarang kirim foto" in texts(out)  # asked again
    assert (await report_of(sessions, report_id)).status == "new"

    out = await officer.send(media=[CLOSURE_PHOTO])
    assert f"✅ {ticket} selesai" in texts(out)
    report = await report_of(sessions, report_id)
    assert (report.status, report.resolution_note) == ("resolved", "Pelaku sudah diamankan")
    [kept] = [m for m in await rows(sessions, ReportMedia) if m.purpose == "closure"]
    assert (kept.report_id, kept.store_ref) == (report_id, CLOSURE_PHOTO.ref)
    [news] = await news_to(cast.reporter, report_id)
    reply = news.payload["reply"]
    assert reply["media"]["ref"] == CLOSURE_PHOTO.ref and reply["media"]["kind"] == "photo"
    assert "Catatan petugas: Pelaku sudah diamankan" in reply["text"]
    assert [o[0] for o in reply["options"]] == ["Sudah beres", "Belum"]
    # The officers' alert is not given the closure photo as the report's own.
    alerts = [r for r in await rows(sessions, Outbox) if r.kind in ("alert", "alert_edit")]
    assert all(CLOSURE_PHOTO.ref not in json.dumps(r.payload) for r in alerts)


async def test_a_photo_with_its_caption_resolves_at_once_and_off_asks_no_photo(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await people(sessions, Channel.WHATSAPP, config_with(closure_photo="required"))
    report_id, ticket = await file(cast.reporter)
    out = await cast.officer.send(button=f"resolve:{report_id}")
    assert "📷 Kirim foto hasil penanganan" in texts(out)
    out = await cast.officer.send("Sudah dicek", media=[CLOSURE_PHOTO])
    assert f"✅ {ticket} selesai" in texts(out)

    off = config_with(closure_photo="off")
    cast.officer.config = off
    cast.neighbour.config = off
    other_id, _ = await file(cast.neighbour)
    out = await cast.officer.send(button=f"resolve:{other_id}")
    assert texts(out).startswith("✍️ Tulis catatan singkat penyelesaian") and "foto" not in texts(
        out
    )
    out = await cast.officer.send("Beres", media=[CLOSURE_PHOTO])  # a photo is not asked for
    assert out.recorded.state == State.STAFF_NOTE.value
    out = await cast.officer.send("Beres")
    assert (await report_of(sessions, other_id)).status == "resolved"
    assert not [m for m in await rows(sessions, ReportMedia) if m.report_id == other_id]


# --- /status: the trail, with names for staff only, never an anonymous reporter ----------------


async def test_status_shows_the_trail_to_staff_with_names_and_to_residents_without(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with())
    report_id, ticket = await file(cast.reporter, anonymous=True)
    tick(cast, minutes=10)
    await resolve(cast, ticket)
    tick(cast, hours=1)
    await cast.reporter.send(f"belum {ticket} masih ada")

    staff_view = texts(await cast.officer.send(f"/status {ticket}"))
    assert "Riwayat:" in staff_view
    assert "dilaporkan — pelapor (anonim)" in staff_view
    assert "selesai — Bripka Andi: Pelaku sudah diamankan" in staff_view
    assert "dibuka lagi — pelapor (anonim): masih ada" in staff_view
    assert "Budi Santoso" not in staff_view

    own_view = texts(await cast.reporter.send(f"/status {ticket}"))
    assert "Status: dibuka lagi" in own_view
    assert "dilaporkan — Anda" in own_view and "dibuka lagi — Anda" in own_view
    assert "selesai — petugas" in own_view and "Bripka Andi" not in own_view
    # Reopened or not, the anonymous reporter's name reaches nobody else.
    others = [r for r in await rows(sessions, Outbox) if r.chat_id != cast.reporter.user_id]
    assert any(r.report_id == report_id and r.kind == "alert" for r in others)
    assert all("Budi Santoso" not in json.dumps(r.payload) for r in others)


# --- Open311, exports and recaps ---------------------------------------------------------------


async def test_open311_exports_and_recaps_count_the_new_statuses(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await people(sessions, Channel.TELEGRAM, config_with())
    main_id, main = await file(cast.neighbour)
    dup_id, dup = await file(cast.reporter)
    re_id, reopened = await file(cast.reporter, "Lampu jalan mati")
    await cast.officer.send(f"gabung {dup} {main}")
    await resolve(cast, reopened)
    await cast.reporter.send(f"belum {reopened} masih mati")

    async with sessions() as session:
        found = [await session.get(Report, i) for i in (main_id, dup_id, re_id)]
        views = await request_views(
            session, cast.officer.config, [r for r in found if r], keyed=True, round_digits=None
        )
        by_ticket = {v["service_request_id"]: v for v in views}
        assert by_ticket[dup]["status"] == "closed"
        assert (
            by_ticket[dup]["status_notes"]
            == f"Duplikat dari laporan {main}; perkembangannya ada di laporan itu."
        )
        assert (by_ticket[reopened]["status"], by_ticket[reopened]["status_notes"]) == (
            "open",
            None,
        )
        assert by_ticket[main]["status"] == "open"

        exported = {r["ticket"]: r for r in await report_rows(session, None, None)}
        assert (exported[dup]["status"], exported[dup]["duplicate_of"]) == ("duplicate", main)
        assert (exported[reopened]["status"], exported[reopened]["reopened"]) == ("reopened", 1)
        assert exported[main]["duplicate_of"] is None and exported[main]["reopened"] == 0
        assert "duplicate_of,reopened" in to_csv(list(exported.values())).splitlines()[0]

        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        now = cast.reporter.now
        start = now - timedelta(hours=1)
        period = Period("daily", start.date(), start.date(), start, now + timedelta(hours=1))
        stats = await compute_stats(session, [area.id], period, now)
    assert stats.open == 2  # the main report and the reopened one; the duplicate is closed
    assert (stats.duplicates, stats.reopened) == (1, 1)
    ctx = Context(cast.officer.config, now=now)
    text = recap_text(ctx, "id", area, period, stats)
    assert "Digabung (duplikat): 1 — dibuka lagi: 1" in text


async def test_a_reopened_reports_draft_of_the_reason_survives_other_commands(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await people(sessions, Channel.TELEGRAM, config_with())
    report_id, ticket = await file(cast.reporter)
    await resolve(cast, ticket)
    await cast.reporter.send(button=f"notfixed:{report_id}")
    out = await cast.reporter.send("/batal")
    assert f"Jawaban dibatalkan; {ticket} tetap tercatat selesai." in texts(out)
    assert (await report_of(sessions, report_id)).status == "resolved"
    async with sessions() as session:
        conversation = await conversations.get(session, "telegram", 1001, 1001)
        assert conversation is not None and conversation.state == "idle"


def test_closure_photo_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="closure_photo"):
        Category("keamanan", closure_photo="sometimes")


async def test_a_required_closure_photo_is_asked_only_for_selesai(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    cast = await people(sessions, channel, config_with(closure_photo="required"))
    main_id, main = await file(cast.neighbour)
    dup_id, _ = await file(cast.reporter)
    other_id, _ = await file(cast.reporter, "Jalan rusak")
    await cast.officer.send(button=f"merge:{dup_id}")
    out = await cast.officer.send(main)
    assert "digabung ke" in texts(out) and out.recorded.state == State.IDLE.value
    await cast.officer.send(button=f"reject:{other_id}")
    out = await cast.officer.send("Bukan wewenang kami")
    assert out.recorded.state == State.IDLE.value
    assert [(await report_of(sessions, i)).status for i in (main_id, dup_id, other_id)] == [
        "new",
        "duplicate",
        "rejected",
    ]
