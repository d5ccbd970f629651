"""Erasure under a large outbox: how long ``/hapusdata`` → Ya holds the database.

    .venv/bin/python bench/erasure.py                  # SQLite, 1,000,000 sent messages
    .venv/bin/python bench/erasure.py --pg postgresql+asyncpg://postgres@127.0.0.1:5432/bench

The outbox is seeded with ``--rows`` sent messages to other people (bench/purge.py's payload: a
resident's text, a day old, so retention has not emptied it), then one person is added who used
the bot: ``--reports`` reports with stories and addresses (alerted to the group, the alert
quoting their name and story), a follow of a neighbour's report, and messages to their chat
(sent and pending) and one to a follower of their report quoting the story. They are erased
exactly as the handler does (``handlers.personal.erase``, then one commit), on a session of the
bot's own engine (SQLite: BEGIN IMMEDIATE, one writer at a time).

Printed per backend: the whole erasure (ms, to the end of the commit); the ms spent in the
statements that read or write the outbox (timed with the engine's cursor events, including the
flush of the rewritten rows); how long the write transaction was held (SQLite: from BEGIN
IMMEDIATE, taken at the session's first statement; PostgreSQL: from its first write), during
which every other writer waits; each outbox statement's plan and the rows it scanned
(PostgreSQL: EXPLAIN ANALYZE, rolled back; SQLite: the plan, a SCAN reading every row) and
changed; and, as a same-run reference, one pass of the old search (every row's payload as text,
LIKE each of the person's strings) over the same outbox. The erasure's result is checked: none
of the person's strings is left in any outbox row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import prepared_db  # noqa: E402  (bench/harness.py)
from purge import seed_outbox  # noqa: E402  (bench/purge.py)
from sqlalchemy import Text, event, func, or_, select  # noqa: E402
from sqlalchemy import cast as sql_cast  # noqa: E402

from handlers import personal as personal_handler  # noqa: E402
from handlers.config import CoreConfig  # noqa: E402
from handlers.turn import Turn  # noqa: E402
from handlers.types import Outcome  # noqa: E402
from storage.areas import get_by_code  # noqa: E402
from storage.db import create_engine, is_sqlite, session_factory  # noqa: E402
from storage.models import Contact, Outbox, Report, ReportFollower  # noqa: E402
from tests.support.chats import SUMBER_JAYA  # noqa: E402

NAME = "Rahmat Hidayat"
PHONE = "+6281299988877"
CHAT = 7300000999
NEIGHBOUR_CHAT = 7300000998
STORY = "Got depan rumah {i} Pak Rahmat di gang Kenanga tersumbat sampah sejak minggu lalu"
ADDRESS = "Jl. Kenanga {i}, RT 03/RW 05"


async def seed_person(url: str, reports: int) -> None:
    """The person, their reports and follows, and the outbox rows to and about them."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        person = Contact(
            channel="telegram",
            external_id=CHAT,
            display_name=NAME,
            phone=PHONE,
            area_id=area.id,
            consent_at=now,
        )
        neighbour = Contact(
            channel="telegram", external_id=NEIGHBOUR_CHAT, display_name="Dewi", area_id=area.id
        )
        s.add_all([person, neighbour])
        await s.flush()
        theirs = [
            Report(
                ticket=f"KTN-ER{i:04d}",
                category="infrastruktur",
                description=STORY.format(i=i),
                address_text=ADDRESS.format(i=i),
                area_id=area.id,
                reporter_id=person.id,
            )
            for i in range(reports)
        ]
        other = Report(
            ticket="KTN-NB0001",
            category="keamanan",
            description="Lampu jalan mati",
            area_id=area.id,
            reporter_id=neighbour.id,
        )
        s.add_all([*theirs, other])
        await s.flush()
        s.add(ReportFollower(report_id=other.id, contact_id=person.id))
        s.add(ReportFollower(report_id=theirs[0].id, contact_id=neighbour.id))

        def message(chat: int, words: str, **extra: Any) -> Outbox:
            return Outbox(
                channel="telegram",
                chat_id=chat,
                kind="reply",
                payload={"reply": {"text": words}, "lang": "id"},
                status=extra.pop("status", "sent"),
                sent_at=now,
                **extra,
            )

        for report in theirs:
            s.add(message(CHAT, f"Laporan {report.ticket} diterima", contact_id=person.id))
            s.add(
                message(
                    -1001234567890,
                    f"{report.ticket}: {report.description}\nPelapor: {NAME} ({PHONE})",
                    report_id=report.id,
                )
            )
        s.add(message(CHAT, "Laporan KTN-NB0001 ditangani", status="pending"))
        s.add(
            message(
                NEIGHBOUR_CHAT,
                f"Kabar {theirs[0].ticket}: {theirs[0].description}",
                contact_id=neighbour.id,
                report_id=theirs[0].id,
            )
        )
        await s.commit()
    await engine.dispose()


@dataclass
class Statement:
    sql: str
    params: Any
    ms: float
    rows: int
    many: bool


def first_params(st: Statement) -> tuple[Any, ...]:
    """The statement's parameters (an executemany's first set)."""
    params = st.params[0] if st.many else st.params
    return tuple(params or ())


@dataclass
class Timings:
    """What the engine's cursor events saw during the erasure."""

    statements: list[Statement] = field(default_factory=list)
    first: float | None = None  # the session's first statement (SQLite: BEGIN IMMEDIATE)
    first_write: float | None = None
    started: dict[int, float] = field(default_factory=dict)


def watch(engine: Any, timings: Timings) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "before_cursor_execute")
    def before(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        now = time.perf_counter()
        timings.started[id(cursor)] = now
        if timings.first is None:
            timings.first = now
        verb = sql.lstrip().split(None, 1)[0].upper()
        if timings.first_write is None and verb in ("INSERT", "UPDATE", "DELETE"):
            timings.first_write = now

    @event.listens_for(sync, "after_cursor_execute")
    def after(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        ms = (time.perf_counter() - timings.started.pop(id(cursor))) * 1000
        timings.statements.append(Statement(sql, params, ms, cursor.rowcount, many))


def on_outbox(sql: str) -> bool:
    words = " ".join(sql.split()).lower()
    return any(f"{verb} outbox" in words for verb in ("from", "update", "into"))


async def erase(url: str) -> tuple[float, float, Timings]:
    """Erase the person as ``/hapusdata`` → Ya does; returns the total and held ms, and the
    statements."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    config = CoreConfig.default()
    async with sessions() as s:  # the contact, as the turn has it loaded
        contact = await s.scalar(select(Contact).where(Contact.external_id == CHAT))
        assert contact is not None
        s.expunge(contact)
    timings = Timings()
    watch(engine, timings)
    async with sessions() as session:
        session.add(contact)
        turn = SimpleNamespace(
            session=session,
            contact=contact,
            config=config,
            now=datetime.now(UTC),
            outbox=[],
            outcome=Outcome(),
        )
        started = time.perf_counter()
        await personal_handler.erase(cast(Turn, turn))
        await session.commit()
        ended = time.perf_counter()
    await engine.dispose()
    begun = timings.first if is_sqlite(url) else timings.first_write
    assert begun is not None
    return (ended - started) * 1000, (ended - begun) * 1000, timings


async def plans(url: str, statements: list[Statement]) -> list[str]:
    """Each outbox statement's plan and rows scanned, without changing anything."""
    engine = create_engine(url)
    found = []
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for st in statements:
            if is_sqlite(url):
                cursor = await driver.execute("EXPLAIN QUERY PLAN " + st.sql, first_params(st))
                steps = [row[3] for row in await cursor.fetchall()]
                found.append("; ".join(steps))
                continue
            # asyncpg ($n parameters, as SQLAlchemy sent them), in a transaction rolled back
            tx = driver.transaction()
            await tx.start()
            try:
                result = await driver.fetchval(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + st.sql, *first_params(st)
                )
            finally:
                await tx.rollback()
            plan = json.loads(result)[0]["Plan"] if isinstance(result, str) else result[0]["Plan"]
            found.append(describe(plan))
    await engine.dispose()
    return found


def describe(plan: dict[str, Any]) -> str:
    """A PostgreSQL plan's scans: node, relation, index, rows read (kept + filtered out)."""
    parts = []

    def walk(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"] and node.get("Relation Name") == "outbox":
            read = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            where = f" using {node['Index Name']}" if "Index Name" in node else ""
            parts.append(f"{node['Node Type']}{where}: {read * node.get('Actual Loops', 1)} read")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return "; ".join(parts) or plan["Node Type"]


async def full_scan_ms(url: str, needles: list[str]) -> tuple[float, int]:
    """One pass of the old search over the whole outbox (the reference): ms, rows found."""
    engine = create_engine(url)
    stored = [json.dumps(n)[1:-1] for n in needles if len(n.strip()) >= 3]
    quoting = or_(*(sql_cast(Outbox.payload, Text).contains(s, autoescape=True) for s in stored))
    async with engine.connect() as conn:
        started = time.perf_counter()
        found = await conn.scalar(select(func.count()).select_from(Outbox).where(quoting))
        took = (time.perf_counter() - started) * 1000
    await engine.dispose()
    return took, int(found or 0)


async def left_over(url: str, needles: list[str]) -> int:
    """Outbox rows that still hold one of the person's strings after the erasure."""
    return (await full_scan_ms(url, needles))[1]


def needles_of(reports: int) -> list[str]:
    stories = [STORY.format(i=i) for i in range(reports)]
    addresses = [ADDRESS.format(i=i) for i in range(reports)]
    return [NAME, PHONE, PHONE.lstrip("+"), str(CHAT), *stories, *addresses]


async def one_backend(name: str, url: str | None, tmp: Path, rows: int, reports: int) -> None:
    db = await prepared_db(tmp / "erasure.db", url=url)
    took = await seed_outbox(db, rows, timedelta(days=1))
    await seed_person(db, reports)
    print(f"   {name}: seeded {rows} sent messages in {took:.0f} s", flush=True)
    needles = needles_of(reports)
    reference, quoting = await full_scan_ms(db, needles)
    total, held, timings = await erase(db)
    scrub = [st for st in timings.statements if on_outbox(st.sql)]
    scrub_ms = sum(st.ms for st in scrub)
    print(
        f"{name}, {rows} outbox rows: erasure {total:.0f} ms (commit included), outbox "
        f"statements {scrub_ms:.0f} ms, write transaction held {held:.0f} ms; "
        f"{len(timings.statements)} statements; same-run reference: one full LIKE pass over "
        f"the outbox {reference:.0f} ms ({quoting} rows quote the person)",
        flush=True,
    )
    for st, plan in zip(scrub, await plans(db, scrub), strict=True):
        one_line = " ".join(st.sql.split())
        shown = one_line if len(one_line) <= 110 else one_line[:107] + "..."
        print(f"   {st.ms:8.1f} ms  {st.rows:>6} rows changed  {shown}\n{'':14}plan: {plan}")
    others = sorted(
        (st for st in timings.statements if not on_outbox(st.sql)), key=lambda st: -st.ms
    )
    for st in others[:2]:
        print(f"   slowest other statement: {st.ms:.1f} ms  {' '.join(st.sql.split())[:100]}")
    left = await left_over(db, needles)
    print(f"   left in the outbox after the erasure: {left} rows (must be 0)", flush=True)
    assert left == 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sent messages seeded")
    parser.add_argument("--reports", type=int, default=3, help="the person's reports")
    parser.add_argument("--pg", metavar="URL", help="also on this PostgreSQL database (wiped)")
    args = parser.parse_args()
    backends = [("SQLite", None)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    with tempfile.TemporaryDirectory() as tmp_name:
        for name, url in backends:
            await one_backend(name, url, Path(tmp_name), args.rows, args.reports)


if __name__ == "__main__":
    asyncio.run(main())
