"""storage.personal.erase: what an Open311 system said about the person goes, every row that
refers to them (found by the foreign keys) goes or loses the reference, their data copy's
file is handed back for deletion."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import personal
from storage.areas import get_by_code
from storage.models import (
    Broadcast,
    Contact,
    DeskSession,
    ErasedContact,
    MediaBlob,
    Open311Request,
    PatrolMember,
    PatrolTeam,
    Report,
)
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA, load_areas

REF = "sha256:" + "ab" * 32


async def test_erasing_reaches_every_row_that_refers_to_the_person(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions)
    now = utcnow()
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        person = Contact(
            channel="whatsapp",
            external_id=6281377712345,
            display_name="Siti Aminah",
            phone="+6281377712345",
            consent_at=now,
        )
        s.add(person)
        await s.flush()
        theirs = Report(
            ticket="KTN-AAAAAA",
            category="keamanan",
            description="Pipa bocor di rumah Aminah",
            address_text="Jl. Kenanga 12",
            area_id=area.id,
            reporter_id=person.id,
        )
        filed = Report(
            ticket="KTN-BBBBBB", category="keamanan", description="Lampu mati", area_id=area.id
        )
        team = PatrolTeam(area_id=area.id, name="Pos Melati")
        s.add_all([theirs, filed, team])
        await s.flush()
        s.add_all(
            [
                Open311Request(
                    report_id=filed.id,
                    fingerprint="f" * 64,
                    first_name="Siti",
                    last_name="Aminah",
                    email="siti@example.com",
                    phone="+6281377712345",
                    linked_contact_id=person.id,
                ),
                Broadcast(area_id=area.id, created_by_id=person.id, audience="all", text="Rapat"),
                PatrolMember(team_id=team.id, name="Siti Aminah", contact_id=person.id),
                DeskSession(token_hash="t" * 64, contact_id=person.id, csrf="c"),
                MediaBlob(ref=REF, size=10, owner_id=person.id, created_at=now - timedelta(1)),
            ]
        )
        await s.commit()

    async with sessions() as s:
        person = await s.get_one(Contact, person.id)
        texts = await personal.personal_texts(s, person)
        assert {"Pipa bocor di rumah Aminah", "Jl. Kenanga 12", "siti@example.com"} <= set(texts)
        erased = await personal.erase(
            s,
            person,
            now=now,
            id_hash="h" * 64,
            marker="dihapus atas permintaan pelapor",
            replacements=lambda lang: {},
        )
        await s.commit()
    assert erased.reports == 2 and erased.files == {REF}  # their own, and the one filed for them

    async with sessions() as s:
        assert (await s.scalars(select(Contact))).all() == []
        assert (await s.scalars(select(PatrolMember))).all() == []
        assert (await s.scalars(select(DeskSession))).all() == []
        [request] = (await s.scalars(select(Open311Request))).all()
        assert (request.first_name, request.email, request.phone, request.linked_contact_id) == (
            None,
            None,
            None,
            None,
        )
        [broadcast] = (await s.scalars(select(Broadcast))).all()
        assert broadcast.created_by_id is None and broadcast.text == "Rapat"
        kept = await s.scalar(select(Report).where(Report.ticket == "KTN-AAAAAA"))
        assert kept is not None and kept.address_text is None and kept.anonymous
        called_in = await s.scalar(select(Report).where(Report.ticket == "KTN-BBBBBB"))
        assert called_in is not None and called_in.description == "dihapus atas permintaan pelapor"
        assert [e.id_hash for e in (await s.scalars(select(ErasedContact))).all()] == ["h" * 64]
        assert await personal.is_erased(s, "h" * 64)
