"""The officers' buttons and typed actions: permissions, claim/resolve/reject, alert edits, the
reporter's news, second presses and races (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from handlers.types import Media, MediaKind, Outcome
from storage import conversations
from storage.models import Contact, Outbox, Report, ReportEvent
from tests.support.chats import (
    ALERT_GROUP,
    KAMPUNG_MELAYU,
    Cast,
    FakeChat,
    link_group,
    load_areas,
    staff_cast,
    texts,
)

ROLES = ["resident", "other_officer", "officer", "coordinator"]
ALLOWED = {"officer", "coordinator"}


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def file(cast: Cast, **kwargs: Any) -> tuple[int, str]:
    out = await cast.reporter.file_report(**kwargs)
    return int(out.recorded.filed["report_id"]), str(out.recorded.filed["ticket"])


async def all_rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def report_of(sessions: async_sessionmaker[AsyncSession], report_id: int) -> Report:
    async with sessions() as session:
        report = await session.get(Report, report_id)
        assert report is not None
        return report


async def contact_id(chat: FakeChat) -> int:
    async with chat.sessions() as session:
        found = await session.scalar(select(Contact.id).where(Contact.external_id == chat.user_id))
        assert found is not None
        return int(found)


async def outbox_of(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Outbox]:
    return [r for r in await all_rows(sessions, Outbox) if r.kind == kind]


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- every privileged action x {resident, officer elsewhere, officer here, coordinator above} ---

Act = Callable[[FakeChat, int, str], Awaitable[Outcome]]
ACTS: dict[str, Act] = {
    "claim_button_group": lambda p, rid, t: p.in_group().send(button=f"claim:{rid}"),
    "resolve_button_group": lambda p, rid, t: p.in_group().send(button=f"resolve:{rid}"),
    "reject_button_group": lambda p, rid, t: p.in_group().send(button=f"reject:{rid}"),
    "claim_button_private": lambda p, rid, t: p.send(button=f"claim:{rid}"),
    "claim_typed": lambda p, rid, t: p.send(f"tangani {t}"),
    "resolve_typed": lambda p, rid, t: p.send(f"SELESAI {t} sudah aman"),
    "reject_typed": lambda p, rid, t: p.send(f"/tolak {t} laporan ganda"),
    "resolve_typed_group": lambda p, rid, t: p.in_group().send(f"/selesai {t} sudah aman"),
    "claim_typed_group": lambda p, rid, t: p.in_group().send(f"/tangani@ktn_bot {t}"),
}
EXPECTED_STATUS = {
    "claim_button_group": "claimed",
    "resolve_button_group": "new",  # asks for the note first
    "reject_button_group": "new",
    "claim_button_private": "claimed",
    "claim_typed": "claimed",
    "resolve_typed": "resolved",
    "reject_typed": "rejected",
    "resolve_typed_group": "resolved",
    "claim_typed_group": "claimed",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("act", list(ACTS))
async def test_every_action_by_every_role(cast: Cast, role: str, act: str) -> None:
    report_id, ticket = await file(cast)
    person = cast.get(role)
    outbox_before = await count(person.sessions, Outbox)
    events_before = await count(person.sessions, ReportEvent)
    out = await ACTS[act](person, report_id, ticket)
    said = out.notice or texts(out)
    report = await report_of(person.sessions, report_id)
    if role not in ALLOWED:
        assert said.startswith("Maaf"), said
        assert report.status == "new" and report.assignee_id is None
        assert await count(person.sessions, Outbox) == outbox_before
        assert await count(person.sessions, ReportEvent) == events_before
        return
    assert report.status == EXPECTED_STATUS[act], said
    if report.status != "new":
        assert report.assignee_id == await contact_id(person)
        assert await count(person.sessions, ReportEvent) == events_before + 1
    else:
        assert said == "Cek chat pribadi untuk menulis catatan."


async def test_buttons_pressed_by_someone_the_bot_never_met_change_nothing(cast: Cast) -> None:
    report_id, _ = await file(cast)
    stranger = FakeChat(cast.officer.sessions, user_id=9999, name="Orang Asing")
    out = await stranger.in_group().send(button=f"claim:{report_id}")
    assert out.notice and out.notice.startswith("Maaf")
    assert (await report_of(cast.officer.sessions, report_id)).status == "new"
    async with cast.officer.sessions() as session:
        assert await session.scalar(select(Contact).where(Contact.external_id == 9999)) is None


@pytest.mark.parametrize("data", ["claim:99999999999", "resolve:0", "reject:2147483648"])
@pytest.mark.parametrize("where", ["group", "private"])
async def test_forged_button_numbers_are_no_report_on_every_database(
    cast: Cast, data: str, where: str
) -> None:
    """A number beyond any report id (reports.id is 32-bit on PostgreSQL) is a polite answer."""
    report_id, _ = await file(cast)
    officer = cast.officer.in_group() if where == "group" else cast.officer
    out = await officer.send(button=data)
    assert out.notice == "Laporan ini tidak ditemukan."
    assert (await report_of(cast.officer.sessions, report_id)).status == "new"


# --- claim --------------------------------------------------------------------------------


async def test_claim_tells_the_reporter_and_edits_the_alert_in_place(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    [alert] = await outbox_of(cast.officer.sessions, "alert")
    assert alert.chat_id == ALERT_GROUP
    out = await cast.officer.in_group().send(button=f"claim:{report_id}")
    assert out.notice == f"👍 Anda menangani {ticket}."
    assert out.replies == []

    report = await report_of(cast.officer.sessions, report_id)
    officer_id = await contact_id(cast.officer)
    assert (report.status, report.assignee_id, report.claimed_at) == (
        "claimed",
        officer_id,
        cast.officer.now,
    )
    [event] = [e for e in await all_rows(cast.officer.sessions, ReportEvent) if e.kind == "claimed"]
    assert (event.from_status, event.to_status, event.actor_id) == ("new", "claimed", officer_id)

    [news] = await outbox_of(cast.officer.sessions, "status")
    assert news.chat_id == cast.reporter.user_id
    assert news.contact_id == await contact_id(cast.reporter)
    assert news.channel == "telegram" and news.report_id == report_id
    assert f"Laporan {ticket} sedang ditangani oleh Bripka Andi." in news.payload["reply"]["text"]

    [edit] = await outbox_of(cast.officer.sessions, "alert_edit")
    assert edit.payload["edit_of"] == alert.id
    assert (edit.chat_id, edit.channel) == (alert.chat_id, alert.channel)
    reply = edit.payload["reply"]
    assert reply["text"].startswith(alert.payload["reply"]["text"])
    assert "👮 Ditangani oleh Bripka Andi — 10:00 WIB" in reply["text"]
    assert [o[1] for o in reply["options"]] == [
        f"resolve:{report_id}",
        f"reject:{report_id}",
        f"merge:{report_id}",
        f"pmenu:{report_id}",
    ]
    assert set(out.outbox_ids) == {news.id, edit.id}


async def test_a_second_press_says_who_has_it_and_changes_nothing(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    rows_before = await count(cast.officer.sessions, Outbox)
    again = await cast.officer.in_group().send(button=f"claim:{report_id}")
    assert again.notice == "Anda sudah menangani ini (sedang ditangani petugas)."
    other = FakeChat(cast.officer.sessions, user_id=4005, name="Bripda Dodi")
    await other.enrol("officer")
    out = await other.in_group().send(button=f"claim:{report_id}")
    assert out.notice == "Sudah ditangani oleh Bripka Andi (sedang ditangani petugas)."
    out = await other.in_group().send(button=f"resolve:{report_id}")
    assert out.notice == "Sudah ditangani oleh Bripka Andi (sedang ditangani petugas)."
    assert await count(cast.officer.sessions, Outbox) == rows_before

    await cast.officer.send(f"selesai {ticket} aman")
    rows_before = await count(cast.officer.sessions, Outbox)
    for person, button in (
        (cast.coordinator, f"claim:{report_id}"),
        (cast.coordinator, f"reject:{report_id}"),
        (other, f"resolve:{report_id}"),
    ):
        out = await person.in_group().send(button=button)
        assert out.notice == "Sudah ditangani oleh Bripka Andi (selesai)."
    out = await cast.officer.in_group().send(button=f"resolve:{report_id}")
    assert out.notice == "Anda sudah menangani ini (selesai)."
    assert await count(cast.officer.sessions, Outbox) == rows_before
    report = await report_of(cast.officer.sessions, report_id)
    assert (report.status, report.resolution_note) == ("resolved", "aman")


async def test_a_coordinator_may_close_a_report_an_officer_claimed(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    out = await cast.coordinator.send(f"tolak {ticket} sudah dilaporkan lewat 110")
    assert texts(out) == f"⛔ {ticket} ditolak."
    report = await report_of(cast.officer.sessions, report_id)
    assert report.status == "rejected"
    assert report.assignee_id == await contact_id(cast.officer), "the assignee stays"
    [edit] = (await outbox_of(cast.officer.sessions, "alert_edit"))[-1:]
    assert "👮 Ditangani oleh Bripka Andi — 10:00 WIB" in edit.payload["reply"]["text"]
    assert "⛔ Ditolak oleh Iptu Sari — 10:00 WIB" in edit.payload["reply"]["text"]


async def test_two_officers_pressing_tangani_at_once_make_one_claim(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report_id, _ = await file(cast)
    extra = [FakeChat(sessions, user_id=4100 + i, name=f"Bripda {i}") for i in range(3)]
    for person in extra:
        await person.enrol("officer")
    pressers = [cast.officer, cast.coordinator, *extra]
    presses = [p.in_group() for p in pressers]
    outcomes = await asyncio.gather(
        *(g.deliver(g.message(button=f"claim:{report_id}")) for g in presses)
    )
    notices = [o.notice or "" for o in outcomes]
    assert sum(n.startswith("👍 Anda menangani") for n in notices) == 1, notices
    assert sum(n.startswith("Sudah ditangani oleh") for n in notices) == len(pressers) - 1
    events = [e for e in await all_rows(sessions, ReportEvent) if e.kind == "claimed"]
    assert len(events) == 1
    report = await report_of(sessions, report_id)
    assert report.status == "claimed" and report.assignee_id == events[0].actor_id
    assert len(await outbox_of(sessions, "status")) == 1
    assert len(await outbox_of(sessions, "alert_edit")) == 1


async def test_two_officers_resolving_at_once_close_it_once(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, ticket = await file(cast)
    outcomes = await asyncio.gather(
        cast.officer.deliver(cast.officer.message(f"selesai {ticket} sudah aman")),
        cast.coordinator.deliver(cast.coordinator.message(f"tolak {ticket} bukan kejadian")),
    )
    said = [texts(o) for o in outcomes]
    assert sum(s.startswith(("✅", "⛔")) for s in said) == 1, said
    assert sum(s.startswith("Sudah ditangani oleh") for s in said) == 1, said
    events = [
        e for e in await all_rows(sessions, ReportEvent) if e.kind in ("resolved", "rejected")
    ]
    assert len(events) == 1


# --- resolve and reject with a note ---------------------------------------------------------


async def test_selesai_in_a_group_asks_for_the_note_in_the_private_chat(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    out = await cast.officer.in_group().send(button=f"resolve:{report_id}")
    assert out.notice == "Cek chat pribadi untuk menulis catatan."
    [ask] = await outbox_of(cast.officer.sessions, "notice")
    assert (ask.chat_id, ask.channel) == (cast.officer.user_id, "telegram")
    assert ask.contact_id == await contact_id(cast.officer)
    assert ask.payload["reply"]["text"].startswith(
        f"✍️ Tulis catatan singkat penyelesaian untuk {ticket}"
    )
    assert out.outbox_ids == [ask.id]
    assert (await report_of(cast.officer.sessions, report_id)).status == "claimed"

    out = await cast.officer.send("Pelaku sudah diamankan warga, diserahkan ke Polsek")
    assert texts(out) == f"✅ {ticket} selesai. Terima kasih!"
    assert out.recorded.state == State.IDLE.value
    report = await report_of(cast.officer.sessions, report_id)
    assert report.status == "resolved" and report.closed_at == cast.officer.now
    assert report.resolution_note == "Pelaku sudah diamankan warga, diserahkan ke Polsek"

    news = [
        r
        for r in await outbox_of(cast.officer.sessions, "status")
        if r.payload["status"] == "resolved"
    ]
    [resolved] = news
    assert resolved.chat_id == cast.reporter.user_id
    text = resolved.payload["reply"]["text"]
    assert f"Laporan {ticket} sudah selesai ditangani oleh Bripka Andi." in text
    assert "Catatan petugas: Pelaku sudah diamankan warga, diserahkan ke Polsek" in text
    last_edit = (await outbox_of(cast.officer.sessions, "alert_edit"))[-1]
    assert last_edit.payload["reply"]["options"] == []
    edit_text = last_edit.payload["reply"]["text"]
    assert "✅ Selesai oleh Bripka Andi — 10:00 WIB" in edit_text
    assert "Catatan: Pelaku sudah diamankan warga" in edit_text

    out = await cast.reporter.send(f"/status {ticket}")
    assert "Status: selesai" in texts(out) and "Catatan petugas: Pelaku" in texts(out)


async def test_the_note_request_keeps_a_report_draft_and_cancel_changes_nothing(
    cast: Cast,
) -> None:
    report_id, ticket = await file(cast)
    officer = cast.officer
    await officer.send("/lapor")
    await officer.press("cat:kesehatan")
    await officer.in_group().send(button=f"reject:{report_id}")
    out = await officer.send("/batal")
    assert texts(out).startswith(f"Catatan dibatalkan; laporan {ticket} tidak diubah.")
    assert out.recorded.state == State.DESCRIPTION.value, "back to the officer's own report"
    assert "Ceritakan singkat" in texts(out)
    assert (await report_of(officer.sessions, report_id)).status == "new"


async def test_the_note_state_refuses_stickers_and_over_long_notes(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    out = await cast.officer.send(button=f"reject:{report_id}")
    assert out.recorded.state == State.STAFF_NOTE.value
    assert texts(out).startswith(f"✍️ Tulis alasan singkat menolak {ticket}")
    out = await cast.officer.send(media=[Media(MediaKind.STICKER, "sticker-1")])
    assert texts(out).startswith("Mohon tulis catatannya dengan teks")
    assert out.recorded.state == State.STAFF_NOTE.value
    out = await cast.officer.send("x" * 600)
    assert "terlalu panjang (600 karakter; maksimal 500 karakter)" in texts(out)
    assert out.recorded.state == State.STAFF_NOTE.value
    out = await cast.officer.send("Laporan ganda, sudah ada KTN sebelumnya")
    assert texts(out) == f"⛔ {ticket} ditolak."
    report = await report_of(cast.officer.sessions, report_id)
    assert (report.status, report.resolution_note) == (
        "rejected",
        "Laporan ganda, sudah ada KTN sebelumnya",
    )
    [news] = await outbox_of(cast.officer.sessions, "status")
    assert "Alasan: Laporan ganda, sudah ada KTN sebelumnya" in news.payload["reply"]["text"]
    assert "tidak dilanjutkan oleh Bripka Andi" in news.payload["reply"]["text"]


async def test_an_unanswered_note_request_expires(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    await cast.officer.in_group().send(button=f"resolve:{report_id}")
    cast.officer.advance(minutes=61)
    out = await cast.officer.send("sudah aman")
    assert f"Permintaan catatan untuk {ticket} sudah kedaluwarsa" in texts(out)
    assert (await report_of(cast.officer.sessions, report_id)).status == "new"


async def test_reject_with_a_reason_typed_in_the_group(cast: Cast) -> None:
    report_id, ticket = await file(cast)
    group = cast.officer.in_group()
    out = await group.send(f"/tolak {ticket}")
    assert texts(out) == "Cek chat pribadi untuk menulis catatan."
    out = await group.send(f"/tolak {ticket} bukan wilayah kami")
    assert texts(out) == f"⛔ {ticket} ditolak."
    report = await report_of(cast.officer.sessions, report_id)
    assert (report.status, report.resolution_note) == ("rejected", "bukan wilayah kami")
    out = await group.send("/tangani KTN-ZZZZZZ")
    assert texts(out) == "Tiket KTN-ZZZZZZ tidak ditemukan."
    out = await group.send("/tangani")
    assert texts(out) == "Ketik: tangani KTN-XXXXXX"


async def test_followers_get_the_news_too_and_an_erased_reporter_gets_none(cast: Cast) -> None:
    _, ticket = await file(cast, category="keamanan")
    neighbour = cast.resident
    await neighbour.send("/lapor")
    await neighbour.press("cat:keamanan")
    await neighbour.press("dup:follow")
    await cast.reporter.send("/hapusdata")
    await cast.reporter.press("erase:yes")
    await cast.officer.send(f"tangani {ticket}")
    [news] = await outbox_of(cast.officer.sessions, "status")
    assert news.chat_id == neighbour.user_id
    assert news.contact_id == await contact_id(neighbour)


async def test_english_speakers_get_english_news(cast: Cast) -> None:
    await cast.reporter.send("/language en")
    report_id, ticket = await file(cast)
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    [news] = await outbox_of(cast.officer.sessions, "status")
    assert news.payload["lang"] == "en"
    assert news.payload["reply"]["text"].startswith(
        f"👮 Your report {ticket} is being handled by Bripka Andi."
    )


# --- privacy ------------------------------------------------------------------------------


async def test_an_anonymous_reporter_is_in_no_group_payload(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from handlers.escalation import escalate_due

    await link_group(sessions, KAMPUNG_MELAYU, chat_id=-300)
    report_id, ticket = await file(cast, anonymous=True)
    cast.officer.advance(minutes=90)
    async with sessions() as session:
        assert await escalate_due(session, cast.officer.context()) == [report_id]
        await session.commit()
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    await cast.officer.send(f"selesai {ticket} sudah aman")
    reporter_id = await contact_id(cast.reporter)
    shared = [r for r in await all_rows(sessions, Outbox) if r.kind != "status"]
    assert {r.kind for r in shared} == {"alert", "escalation", "alert_edit"}
    for row in shared:
        dumped = json.dumps(row.payload, ensure_ascii=False)
        for secret in ("Budi", "Santoso", "1001", "6281100001"):
            assert secret not in dumped, (row.kind, secret)
        assert row.contact_id != reporter_id
        assert "Pelapor: anonim" in row.payload["reply"]["text"]
    [news, done] = await outbox_of(sessions, "status")
    assert news.chat_id == done.chat_id == cast.reporter.user_id, "anonymous still gets news"


async def test_a_reporter_who_erases_their_data_vanishes_from_alerts_sent_or_not(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """/hapusdata after Kirim: the queued alert, the kept copies and later edits lose the name."""
    report_id, _ticket = await file(cast)
    [alert] = await outbox_of(sessions, "alert")
    assert "Budi Santoso" in alert.payload["reply"]["text"]
    await cast.reporter.send("/hapusdata")
    await cast.reporter.send(button="erase:yes")
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    shared = [r for r in await all_rows(sessions, Outbox) if r.kind in ("alert", "alert_edit")]
    assert {r.kind for r in shared} == {"alert", "alert_edit"}
    for row in shared:
        assert "Budi" not in json.dumps(row.payload, ensure_ascii=False), row.kind
        assert "Pelapor: anonim" in row.payload["reply"]["text"]


async def test_a_named_reporter_is_shown_to_officers(cast: Cast) -> None:
    await file(cast)
    [alert] = await outbox_of(cast.officer.sessions, "alert")
    assert "Pelapor: Budi Santoso" in alert.payload["reply"]["text"]


# --- buttons in private chats -------------------------------------------------------------


async def test_pressing_an_alert_button_in_a_private_chat_keeps_the_menu_working(
    cast: Cast,
) -> None:
    report_id, ticket = await file(cast)
    await cast.officer.send("/lapor")
    await cast.officer.press("cat:kesehatan")
    await cast.officer.send("Ada maling motor")
    out = await cast.officer.send(button=f"claim:{report_id}")
    assert out.notice == f"👍 Anda menangani {ticket}." and out.replies == []
    out = await cast.officer.send("Gang Mawar")
    assert out.recorded.state == State.PHOTO.value
    async with cast.officer.sessions() as session:
        conv = await conversations.get(
            session, "telegram", cast.officer.user_id, cast.officer.user_id
        )
        assert conv is not None and conv.draft["report"]["description"] == "Ada maling motor"


BALI = """code,name,level,parent_code,timezone
51,Bali,provinsi,,Asia/Makassar
51.71,Kota Denpasar,kota,51,Asia/Makassar
51.71.01,Denpasar Selatan,kecamatan,51.71,Asia/Makassar
51.71.01.1001,Sesetan,kelurahan,51.71.01,Asia/Makassar
"""


async def test_times_in_the_alert_edit_are_the_areas_local_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions, BALI)
    await link_group(sessions, "51.71.01.1001", chat_id=-500)
    start = datetime(2025, 5, 12, 11, 5, tzinfo=UTC)
    reporter = FakeChat(sessions, user_id=1001, name="Made", now=start)
    officer = FakeChat(sessions, user_id=4001, name="Bripka Ketut", now=start)
    await reporter.onboard("51.71.01.1001")
    await officer.enrol("officer", "51.71.01.1001")
    filed = (await reporter.file_report("lainnya")).recorded.filed
    await officer.in_group(chat_id=-500).send(button=f"claim:{filed['report_id']}")
    officer.advance(hours=14)
    await officer.send(f"selesai {filed['ticket']} beres")
    edits = await outbox_of(sessions, "alert_edit")
    assert "👮 Ditangani oleh Bripka Ketut — 19:05 WITA" in edits[0].payload["reply"]["text"]
    last = edits[-1].payload["reply"]["text"]
    assert "✅ Selesai oleh Bripka Ketut — 13/05 09:05 WITA" in last
    assert "Waktu: 12/05/2025 19:05 WITA" in last
    assert start + timedelta(hours=14) == (await report_of(sessions, filed["report_id"])).closed_at
