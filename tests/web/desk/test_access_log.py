"""The access log (UU PDP): a report's page and a download on the desk are recorded with who
and when and which report or filter, never what was read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import AccessLog, Contact, Report
from tests.support.chats import staff_cast
from tests.support.desk import client, desk_app, sign_in, with_desk


async def test_desk_reads_are_logged_without_the_data(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await staff_cast(sessions)
    with_desk(cast.coordinator)
    await cast.reporter.file_report(description="Helm Budi dicuri di parkiran")
    async with sessions() as s:
        ticket = await s.scalar(select(Report.ticket))
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        await sign_in(http, cast.coordinator)
        await http.get("/dasbor/")  # the list alone is not a read of one person's report
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert "Helm Budi" in page.text
        await http.get("/dasbor/ekspor.csv?q=Helm+Budi&category=keamanan")
    async with sessions() as s:
        coordinator = await s.scalar(select(Contact.id).where(Contact.external_id == 4003))
        report = await s.scalar(select(Report.id))
        rows = (await s.scalars(select(AccessLog).order_by(AccessLog.id))).all()
    assert [(r.kind, r.via, r.actor_id) for r in rows] == [
        ("report", "desk", coordinator),
        ("export", "desk", coordinator),
    ]
    assert rows[0].report_id == report and rows[0].subject is None
    assert rows[1].subject == "format=csv category=keamanan q=… sort=newest reports=1"
    for r in rows:  # never the data, nor the search words
        assert "Budi" not in (r.subject or "") and "Helm" not in (r.subject or "")
