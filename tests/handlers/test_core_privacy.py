"""Privacy: /status never shows someone else's report; /hapusdata erases and anonymises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from storage import conversations
from storage.areas import get_by_code
from storage.models import Contact, ErasedContact, Outbox, Report, ReportFollower
from tests.support.chats import SUMBER_JAYA, WIYONO, FakeChat, load_areas, texts


@pytest.fixture
async def reporter(sessions: async_sessionmaker[AsyncSession]) -> FakeChat:
    await load_areas(sessions)
    chat = FakeChat(sessions, user_id=1001, name="Budi Santoso", phone="+6281100001")
    await chat.onboard()
    return chat


async def _ticket(chat: FakeChat, **kwargs: Any) -> str:
    out = await chat.file_report(**kwargs)
    return str(out.recorded.filed["ticket"])


async def _make_staff(
    sessions: async_sessionmaker[AsyncSession], user_id: int, role: str, code: str
) -> None:
    async with sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.external_id == user_id))
        area = await get_by_code(session, code)
        assert contact is not None and area is not None
        contact.role, contact.area_id = role, area.id
        await session.commit()


async def test_someone_elses_ticket_is_not_found(reporter: FakeChat) -> None:
    ticket = await _ticket(reporter)
    stranger = FakeChat(reporter.sessions, user_id=2002, name="Orang Lain")
    await stranger.onboard()
    out = await stranger.send(f"/status {ticket}")
    assert texts(out) == f"Tiket {ticket} tidak ditemukan."
    out = await stranger.send("/status KTN-ZZZZZZ")
    assert texts(out) == "Tiket KTN-ZZZZZZ tidak ditemukan.", "same answer as a missing ticket"
    out = await stranger.send("/status")
    assert ticket not in texts(out) and "belum punya laporan" in texts(out)


@pytest.mark.parametrize(
    ("role", "code", "sees"),
    [
        ("officer", SUMBER_JAYA, True),
        ("coordinator", "17.71.08", True),
        ("officer", WIYONO, False),
        ("resident", SUMBER_JAYA, False),
    ],
)
async def test_staff_of_the_area_see_the_ticket(
    reporter: FakeChat, role: str, code: str, sees: bool
) -> None:
    ticket = await _ticket(reporter)
    other = FakeChat(reporter.sessions, user_id=5005, name="Aipda Rahmat")
    await other.onboard()
    await _make_staff(reporter.sessions, 5005, role, code)
    said = texts(await other.send(f"/status {ticket}"))
    assert ("menunggu petugas" in said) is sees
    assert ("tidak ditemukan" in said) is not sees


async def test_bad_ticket_text_is_explained(reporter: FakeChat) -> None:
    out = await reporter.send("/status halo")
    assert "bukan nomor tiket" in texts(out)


async def test_hapusdata_erases_personal_data_and_anonymises_reports(reporter: FakeChat) -> None:
    first = await _ticket(reporter)
    neighbour = FakeChat(reporter.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    await neighbour.file_report("kesehatan")
    await reporter.send("/lapor")
    await reporter.press("Kesehatan")
    await reporter.press("dup:follow")
    await reporter.send("/lapor")
    await reporter.send("lainnya")  # a draft in progress

    out = await reporter.send("/hapusdata")
    assert "Hapus data pribadi Anda?" in texts(out)
    assert [o.data for o in out.replies[-1].options] == ["erase:yes", "erase:no"]
    out = await reporter.press("Ya")
    said = texts(out)
    assert "sudah dihapus" in said and "nama, nomor HP" in said and "1 laporan" in said
    assert out.recorded.erased is True

    async with reporter.sessions() as session:
        # The contact and the conversation are gone; only a keyed hash of the chat id stays.
        assert await session.scalar(select(Contact).where(Contact.external_id == 1001)) is None
        assert await conversations.get(session, "telegram", 1001, 1001) is None
        [kept] = (await session.scalars(select(ErasedContact))).all()
        assert len(kept.id_hash) == 64 and "1001" not in kept.id_hash
        mine = await session.scalar(select(Report).where(Report.ticket == first))
        assert mine is not None and mine.reporter_id is None and mine.anonymous
        assert mine.description == "dihapus atas permintaan pelapor"
        assert (await session.scalars(select(ReportFollower))).all() == []

    out = await reporter.send("/status")
    assert "belum punya laporan" in texts(out)
    out = await reporter.send(f"/status {first}")
    assert "tidak ditemukan" in texts(out), "the report is no longer linked to them"
    out = await reporter.send("halo")
    assert "Apakah Anda setuju?" in texts(out), "coming back starts with consent again"
    async with reporter.sessions() as session:
        back = await session.scalar(select(Contact).where(Contact.external_id == 1001))
        assert back is not None and back.opted_out_at is not None, "no announcements unasked"


async def test_mydata_gives_the_person_their_data_as_a_json_document(reporter: FakeChat) -> None:
    ticket = await _ticket(reporter)
    out = await reporter.send("/dataku")
    said = texts(out)
    assert "Data pribadi Anda di KTN" in said and "Budi Santoso" in said and ticket in said
    [document] = [r.document for r in out.replies if r.document is not None]
    assert document.filename.endswith(".json") and document.content_type == "application/json"
    data = json.loads(document.data)
    assert data["contact"]["name"] == "Budi Santoso" and data["contact"]["chat_id"] == 1001
    assert data["consent"]["given_at"] is not None
    [mine] = data["reports"]
    assert mine["ticket"] == ticket and mine["trail"][0]["kind"] == "created"
    assert out.forget_replies, "the copy is not kept in the outbox once sent"
    await reporter.send("/language en")
    assert "Your personal data at KTN" in texts(await reporter.send("/mydata"))


async def test_hapusdata_no_keeps_everything(reporter: FakeChat) -> None:
    await _ticket(reporter)
    await reporter.send("hapus data")
    out = await reporter.press("Tidak")
    assert "tidak dihapus" in texts(out)
    assert out.recorded.state == State.IDLE.value
    async with reporter.sessions() as session:
        contact = await session.scalar(select(Contact))
        assert contact is not None and contact.display_name == "Budi Santoso"
        report = await session.scalar(select(Report))
        assert report is not None and report.reporter_id == contact.id


async def test_followers_of_an_erased_reporters_report_are_told_nothing(
    reporter: FakeChat,
) -> None:
    await _ticket(reporter, category="kesehatan")
    neighbour = FakeChat(reporter.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    await neighbour.send("/lapor")
    await neighbour.press("Kesehatan")
    assert neighbour.history[-1].recorded.followed is None
    out = await neighbour.press("dup:follow")
    assert out.recorded.followed is not None

    async def to_neighbour() -> int:
        async with reporter.sessions() as session:
            rows = await session.scalars(select(Outbox).where(Outbox.chat_id == 2002))
            return len(rows.all())

    before = await to_neighbour()
    await reporter.send("/hapusdata")
    assert (await reporter.press("Ya")).recorded.erased
    assert await to_neighbour() == before
