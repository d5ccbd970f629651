"""The access log in chat: staff reading someone else's ticket with /status, and /ekspor, are
recorded; a reporter reading their own ticket is not a privileged read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import AccessLog, Contact, Report
from tests.support.chats import staff_cast, texts


async def _log(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, int | None]]:
    async with sessions() as s:
        rows = (await s.scalars(select(AccessLog).order_by(AccessLog.id))).all()
        names = dict((await s.execute(select(Contact.id, Contact.display_name))).all())
    return [(r.kind, r.via, names.get(r.actor_id)) for r in rows]  # type: ignore[misc]


async def test_staff_status_of_a_ticket_and_ekspor_are_logged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await staff_cast(sessions)
    out = await cast.reporter.file_report(description="Lampu jalan mati di gang 3")
    ticket = str(out.recorded.filed["ticket"])
    assert ticket in texts(await cast.reporter.send(f"/status {ticket}"))
    assert await _log(sessions) == []  # their own report
    assert ticket in texts(await cast.officer.send(f"/status {ticket}"))
    await cast.coordinator.send("/ekspor")
    assert await _log(sessions) == [
        ("report", "chat", "Bripka Andi"),
        ("export", "chat", "Iptu Sari"),
    ]
    async with sessions() as s:
        rows = (await s.scalars(select(AccessLog).order_by(AccessLog.id))).all()
        report = await s.scalar(select(Report.id))
    assert rows[0].report_id == report
    assert rows[1].subject is not None and rows[1].subject.startswith("format=csv area=")
    assert "Lampu" not in rows[1].subject
