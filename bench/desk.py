"""The desk with a large database: list, filters, map data and numbers, p95 per page.

    .venv/bin/python bench/desk.py                 # 1,000,000 reports on SQLite
    .venv/bin/python bench/desk.py --no-sqlite --pg postgresql+asyncpg://postgres@127.0.0.1:5432/ktn_desk_bench

The database is seeded like P4 (``bench.growth``: a year of reports over every sample area),
then given what the desk reads and the seed leaves out: a pin on nine reports in ten, officers
who claimed the closed ones (claimed 0-10 h after filing), escalations and escalation times.
Each page is requested through the desk's own app (ASGI, signed in as the coordinator of the
province holding about half of the reports) ``--runs`` times after a warm-up; printed: p50 and
p95 in ms, with the rows in scope and the rows the page returned. Targets (issue 19): p95 <=
300 ms for the list, filters and map data, <= 500 ms for the numbers. The PostgreSQL database
named is wiped first: give the benchmark its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from harness import prepared_db  # noqa: E402  (bench/harness.py)
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from bot.config import WebSettings  # noqa: E402
from bot.web.desk import Desk  # noqa: E402
from bot.wiring import CHANNELS  # noqa: E402
from handlers.config import CoreConfig  # noqa: E402
from storage.areas import descendant_ids, get_by_code  # noqa: E402
from storage.db import create_engine, is_sqlite, session_factory  # noqa: E402
from storage.desk import create_login  # noqa: E402
from storage.models import Contact, Report  # noqa: E402

OFFICERS = 40
PROVINCE = "17"  # Bengkulu: its kota, kecamatan and kelurahan
RARE_STORY = "Motor warga hanyut terbawa arus sungai di jembatan desa."  # 10 reports tell it


async def enrich(url: str) -> None:
    """Pins, claims by officers, escalations: what the desk shows and the P4 seed leaves out."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as s:
        area = await get_by_code(s, PROVINCE)
        assert area is not None
        first = (await s.scalar(select(func.max(Contact.id)))) or 0
        for i in range(OFFICERS):
            s.add(
                Contact(
                    channel="telegram",
                    external_id=8_000_000_000 + i,
                    display_name=f"Petugas {i}",
                    role="officer",
                    area_id=area.id,
                )
            )
        await s.commit()
    sqlite = is_sqlite(url)
    minutes = "(id % 600)"
    later = (
        (lambda col, m: f"datetime({col}, '+' || {m} || ' minutes')")
        if sqlite
        else (lambda col, m: f"{col} + {m} * interval '1 minute'")
    )
    statements = [
        "UPDATE reports SET latitude = -3.80 + (id % 997) / 10000.0, "
        "longitude = 102.25 + (id % 991) / 10000.0 WHERE id % 10 <> 0",
        f"UPDATE reports SET claimed_at = {later('created_at', minutes)}, "
        f"assignee_id = {first + 1} + id % {OFFICERS} WHERE closed_at IS NOT NULL",
        f"UPDATE reports SET escalate_at = {later('created_at', '60')}",
        f"UPDATE reports SET escalated_at = {later('created_at', '61')} WHERE id % 50 = 0",
        # ten reports with a story of their own: the rare word the free-text search looks for
        f"UPDATE reports SET description = '{RARE_STORY}' WHERE id % 100000 = 7",
        "ANALYZE" if sqlite else "ANALYZE reports",
    ]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    if not sqlite:  # what autovacuum does after the bulk UPDATEs: index-only scans again
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE reports"))
    await engine.dispose()


async def signed_in(url: str) -> tuple[httpx.AsyncClient, list[int], int, int]:
    """A client signed in to the desk as the province's coordinator; scope, rows, an officer."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as s:
        area = await get_by_code(s, PROVINCE)
        assert area is not None
        scope = await descendant_ids(s, area.id)
        boss = await s.scalar(select(Contact).where(Contact.external_id == 8_100_000_000))
        if boss is None:
            boss = Contact(
                channel="telegram",
                external_id=8_100_000_000,
                display_name="Kapolda",
                role="coordinator",
                area_id=area.id,
            )
            s.add(boss)
            await s.flush()
        token = create_login(s, boss.id, datetime.now(UTC), timedelta(minutes=10))
        officer = await s.scalar(select(func.max(Contact.id)).where(Contact.role == "officer"))
        rows = await s.scalar(select(func.count()).where(Report.area_id.in_(scope)))
        await s.commit()
    core = CoreConfig.default()
    core = CoreConfig(
        catalog=core.catalog, categories=core.categories, channels=CHANNELS, desk_url="http://b"
    )
    # numbers_cache_seconds=0: every view computes its numbers (the cold figure)
    desk = Desk(sessions, core, WebSettings(tiles_url="", numbers_cache_seconds=0))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Starlette(routes=desk.routes())), base_url="http://b"
    )
    answer = await client.post(f"/dasbor/masuk/{token}")
    assert answer.status_code == 303, answer.text
    return client, scope, int(rows or 0), int(officer or 0)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(client: httpx.AsyncClient, path: str, runs: int) -> tuple[list[float], int]:
    """Request the page ``runs`` times after two warm-ups; times in ms, rows on the page."""
    shown = 0
    for _ in range(2):
        await client.get(path)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
        if path.startswith("/dasbor/peta.json"):
            shown = len(answer.json()["points"])
        elif path.startswith("/dasbor/angka"):
            shown = int(answer.text.split('data-testid="created">', 1)[1].split("<", 1)[0])
        else:
            shown = answer.text.count('<a href="/dasbor/laporan/')
    return times, shown


async def run_backend(
    name: str, url: str, args: argparse.Namespace, *, seeded: bool = False
) -> None:
    if not seeded:
        started = time.perf_counter()
        await enrich(url)
        took = time.perf_counter() - started
        print(f"   {name}: pins, claims and escalations added in {took:.0f} s", flush=True)
    client, _scope, rows, officer = await signed_in(url)
    today = datetime.now(UTC).date()
    month = f"from={today - timedelta(days=30)}&to={today}"
    weeks8 = f"from={today - timedelta(days=today.weekday(), weeks=7)}&to={today}"
    pages = [
        ("list", "/dasbor/", 300),
        ("list, page 50", "/dasbor/?page=50", 300),
        ("filter status+category", "/dasbor/?status=resolved&category=kesehatan", 300),
        ("filter open only", "/dasbor/?status=new&status=claimed", 300),
        ("filter 30 days, urgent", f"/dasbor/?{month}&urgent=1", 300),
        ("filter officer", f"/dasbor/?officer={officer}", 300),
        ("filter text (a ticket)", "/dasbor/?q=KTN-ABC234", 300),
        ("filter text (a word in no report)", "/dasbor/?q=gempa", 300),
        ("filter text (a rare word: 10 reports)", "/dasbor/?q=hanyut", 300),
        ("filter text (a prefix of the rare word)", "/dasbor/?q=hany", 300),
        ("filter text (two rare words), open only", "/dasbor/?q=motor+sungai&status=new", 300),
        ("filter text (a word every report has)", "/dasbor/?q=sandal", 300),
        (
            "filter text (a word every report has), oldest first",
            "/dasbor/?q=sandal&sort=oldest",
            300,
        ),
        ("map data", "/dasbor/peta.json", 300),
        ("map data, one category", "/dasbor/peta.json?category=bencana", 300),
        ("numbers, default: 4 weeks (computed every view)", "/dasbor/angka", 500),
        ("numbers, 30 days (computed every view)", f"/dasbor/angka?{month}", 500),
        ("numbers, 8 weeks (computed every view)", f"/dasbor/angka?{weeks8}", 500),
    ]
    pages = [p for p in pages if args.only in p[0]]
    try:
        for label, path, target in pages:
            times, shown = await measure(client, path, args.runs)
            p95 = pct(times, 95)
            verdict = "ok" if p95 <= target else "OVER"
            print(
                f"desk {name} {label}: p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms "
                f"(target <= {target} ms: {verdict}); {rows} reports in scope, {shown} on the page",
                flush=True,
            )
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pg", help="also on this PostgreSQL URL (its schema is dropped)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--only", default="", help="only the pages whose label contains this")
    parser.add_argument(
        "--pg-seeded", action="store_true", help="the PostgreSQL database is seeded already"
    )
    parser.add_argument(
        "--sqlite-file", type=Path, help="keep the seeded SQLite database here; reuse it if there"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backends: list[tuple[str, str | None]] = [] if args.no_sqlite else [("SQLite", None)]
        if args.pg:
            backends.append(("PostgreSQL", args.pg))
        for name, given in backends:
            path = args.sqlite_file or tmp / "desk.db"
            if given is None and path.exists():
                print(f"   {name}: reusing {path}", flush=True)
                await run_backend(name, f"sqlite+aiosqlite:///{path}", args, seeded=True)
                continue
            if given is not None and args.pg_seeded:
                print(f"   {name}: reusing the seeded database", flush=True)
                await run_backend(name, given, args, seeded=True)
                continue
            if given is not None:
                await _create_database(given)
            url = await prepared_db(path, url=given, contacts=args.contacts, reports=args.reports)
            await run_backend(name, url, args)


async def _create_database(url: str) -> None:
    """Create the benchmark's own PostgreSQL database when it does not exist yet."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        found = await conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        )
        if not found:
            await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
