"""The desk's free-text search (storage.desk, migration 0013's index): words and prefixes found
in ticket, story and address, ignoring case; the index follows edits, erasure and deletion
(SQLite's triggers); anything a person types is safe; the area scope and other filters hold."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage.desk
from storage import migrate
from storage.db import create_engine, is_sqlite, session_factory
from storage.desk import Filter, conditions, dialect_of, list_reports, map_points, plan_search
from storage.models import Area, Report
from tests.conftest import reset_postgres

pytestmark = pytest.mark.db


@pytest.fixture(params=["few", "common"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each search test twice on SQLite: as a word few reports hold (the index's rows read and
    sorted) and as a common one (the list walked, the index asked about each row)."""
    if request.param == "common":
        monkeypatch.setattr(storage.desk, "COMMON", 1)
    return str(request.param)


ERASED = "dihapus atas permintaan pelapor"  # what erasure writes over a story (an UPDATE)
STORIES = {
    "KTN-MTR001": ("Motor dicuri di depan pasar", "Jl. Merdeka 5"),
    "KTN-BJR002": ("Banjir setinggi lutut di RT 03", None),
    "KTN-LMP003": ("Lampu jalan mati, kabel putus", "Gang Mawar"),
    "KTN-DSK004": ("Diskon 50% 'palsu' dan \"penipuan\" *online*", None),
}
ELSEWHERE = ("KTN-MTR005", "Motor hilang di terminal")  # another area: never in scope


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Two villages; the reports above in the first. The scope: the first village."""
    async with sessions() as s:
        here = Area(code="17.01", name="Sumber Jaya", level="kelurahan")
        there = Area(code="17.02", name="Sawah Lebar", level="kelurahan")
        s.add_all([here, there])
        await s.flush()
        for ticket, (story, address) in STORIES.items():
            s.add(
                Report(
                    ticket=ticket,
                    category="lainnya",
                    description=story,
                    address_text=address,
                    area_id=here.id,
                )
            )
        ticket, story = ELSEWHERE
        s.add(Report(ticket=ticket, category="lainnya", description=story, area_id=there.id))
        await s.commit()
        return [here.id]


async def _found(
    sessions: async_sessionmaker[AsyncSession],
    scope: Sequence[int],
    q: str,
    statuses: Sequence[str] = (),
    category: str | None = None,
) -> set[str]:
    f = Filter(area_ids=scope, text=q, statuses=statuses, category=category)
    async with sessions() as s:
        return {row.report.ticket for row in await list_reports(s, f, limit=50)}


async def _index_is_sound(sessions: async_sessionmaker[AsyncSession]) -> None:
    """SQLite: the FTS5 index agrees with the reports' texts (raises when it does not)."""
    async with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            await s.execute(
                text("INSERT INTO report_search(report_search, rank) VALUES ('integrity-check', 1)")
            )


async def test_words_prefixes_and_case_in_story_address_and_ticket(
    sessions: async_sessionmaker[AsyncSession], plan: str
) -> None:
    scope = await _seed(sessions)
    assert await _found(sessions, scope, "motor") == {"KTN-MTR001"}  # not the other area's
    assert await _found(sessions, scope, "moto") == {"KTN-MTR001"}
    assert await _found(sessions, scope, "MOTOR") == {"KTN-MTR001"}
    assert await _found(sessions, scope, "lAmPu") == {"KTN-LMP003"}
    assert await _found(sessions, scope, "merdeka") == {"KTN-MTR001"}  # the address
    assert await _found(sessions, scope, "mawar") == {"KTN-LMP003"}
    assert await _found(sessions, scope, "BJR002") == {"KTN-BJR002"}  # part of a ticket
    assert await _found(sessions, scope, "KTN-BJR002") == {"KTN-BJR002"}  # the whole ticket
    assert await _found(sessions, scope, "banjir lutut") == {"KTN-BJR002"}  # every word
    assert await _found(sessions, scope, "banjir kabel") == set()
    assert await _found(sessions, scope, "gempa") == set()


async def test_other_filters_and_the_map_still_apply(
    sessions: async_sessionmaker[AsyncSession], plan: str
) -> None:
    scope = await _seed(sessions)
    async with sessions() as s:
        await s.execute(
            Report.__table__.update()
            .where(Report.ticket == "KTN-MTR001")
            .values(status="claimed", latitude=-3.8, longitude=102.3)
        )
        await s.commit()
    assert await _found(sessions, scope, "motor", statuses=["claimed"]) == {"KTN-MTR001"}
    assert await _found(sessions, scope, "motor", statuses=["new"]) == set()
    assert await _found(sessions, scope, "lampu", category="keamanan") == set()
    async with sessions() as s:
        points = await map_points(s, Filter(area_ids=scope, text="moto"), limit=10)
        assert [p.ticket for p in points] == ["KTN-MTR001"]
        assert await map_points(s, Filter(area_ids=scope, text="lampu"), limit=10) == []


async def test_the_index_follows_edits_erasure_and_deletion(
    sessions: async_sessionmaker[AsyncSession], plan: str
) -> None:
    scope = await _seed(sessions)
    async with sessions() as s:
        report = await s.scalar(select(Report).where(Report.ticket == "KTN-BJR002"))
        assert report is not None
        report.description = "Pohon tumbang menutup jalan"
        report.address_text = "Simpang Kenanga"
        await s.commit()
    assert await _found(sessions, scope, "banjir") == set()
    assert await _found(sessions, scope, "tumbang") == {"KTN-BJR002"}
    assert await _found(sessions, scope, "kenanga") == {"KTN-BJR002"}
    # erasure: an ordinary UPDATE over the story and the address
    async with sessions() as s:
        await s.execute(
            Report.__table__.update()
            .where(Report.ticket.in_(["KTN-BJR002", "KTN-MTR001"]))
            .values(description=ERASED, address_text=None)
        )
        await s.commit()
    assert await _found(sessions, scope, "tumbang") == set()
    assert await _found(sessions, scope, "kenanga") == set()
    assert await _found(sessions, scope, "merdeka") == set()
    assert await _found(sessions, scope, "motor") == set()
    assert await _found(sessions, scope, "dihapus") == {"KTN-BJR002", "KTN-MTR001"}
    async with sessions() as s:
        await s.execute(delete(Report).where(Report.ticket == "KTN-LMP003"))
        await s.commit()
    assert await _found(sessions, scope, "lampu") == set()
    assert await _found(sessions, scope, "diskon") == {"KTN-DSK004"}  # the others untouched
    await _index_is_sound(sessions)


async def test_the_search_reads_the_index(sessions: async_sessionmaker[AsyncSession]) -> None:
    """What makes it fast with a million reports: SQLite asks FTS5, PostgreSQL can answer the
    ILIKE from the trigram index (told not to read the whole table, as a big table would)."""
    scope = await _seed(sessions)
    async with sessions() as s:
        dialect = dialect_of(s)
        searched = conditions(Filter(area_ids=scope, text="moto"), dialect)[-1]  # the text's
        stmt = select(Report.id).where(searched)
        sql = str(stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        if dialect == "postgresql":
            await s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await s.scalars(text(f"EXPLAIN {sql}"))
        else:
            plan = (row[-1] for row in await s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        index = {"sqlite": "VIRTUAL TABLE INDEX", "postgresql": "ix_reports_search_trgm"}
        assert index[dialect] in " ".join(plan)


async def test_a_prefix_is_spelled_out_into_the_words_it_stands_for(
    sessions: async_sessionmaker[AsyncSession], plan: str
) -> None:
    """SQLite: whole words are read lazily, a prefix query reads all its rows first; the plan
    says which reading the list gets."""
    scope = await _seed(sessions)
    async with sessions() as s:
        search = await plan_search(s, Filter(area_ids=scope, text="MOTO pas"))
        if dialect_of(s) != "sqlite":
            assert search is None
            return
    assert search is not None
    assert search.query == '("motor") AND ("pasar")'
    assert search.common == (plan == "common")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ('"', {"KTN-DSK004"}),  # no word: the character itself, where it is written
        ("*", {"KTN-DSK004"}),
        ("%", {"KTN-DSK004"}),
        ("_", set()),
        ("'", {"KTN-DSK004"}),
        ("\\", set()),
        ("NEAR(", set()),
        ("NEAR(motor, pasar)", set()),  # "near" is a word like any other: in no report
        ("AND", set()),
        ("motor NOT pasar", set()),
        ("motor AND", set()),
        ("NOT motor", set()),
        ('"motor', {"KTN-MTR001"}),
        ("motor*", {"KTN-MTR001"}),
        ("-motor", {"KTN-MTR001"}),
        ("^motor", {"KTN-MTR001"}),
        ("description:motor", set()),
        ("(motor) pasar:", {"KTN-MTR001"}),
        ("50%", {"KTN-DSK004"}),
        ("'palsu'", {"KTN-DSK004"}),
        ('"penipuan" online', {"KTN-DSK004"}),
        ("   ", {"KTN-MTR001", "KTN-BJR002", "KTN-LMP003", "KTN-DSK004"}),
    ],
)
async def test_whatever_is_typed_is_safe_and_sensible(
    sessions: async_sessionmaker[AsyncSession], typed: str, expected: set[str], plan: str
) -> None:
    scope = await _seed(sessions)
    assert await _found(sessions, scope, typed) == expected


async def test_without_pg_trgm_the_migration_passes_and_the_search_reads_every_row(
    db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, a role that may not create extensions: migration 0013 still succeeds, with no
    trigram index; the search gives the same answers (reading every row) and says so once."""
    if is_sqlite(db_url):
        pytest.skip("PostgreSQL's extensions")
    url = make_url(db_url)
    role = f"{url.database}_no_ext"
    admin = create_engine(db_url)
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        await conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
    engine = create_engine(url.set(username=role).render_as_string(hide_password=False))
    try:
        await migrate.upgrade(engine)
        assert await migrate.is_up_to_date(engine)
        async with engine.connect() as conn:
            indexes = await conn.scalars(text("SELECT indexname FROM pg_indexes"))
            assert "ix_reports_search_trgm" not in set(indexes)
        monkeypatch.setattr(storage.desk, "_unindexed_logged", [])
        sessions = session_factory(engine)
        scope = await _seed(sessions)
        with caplog.at_level(logging.WARNING, logger="storage.desk"):
            assert await _found(sessions, scope, "moto") == {"KTN-MTR001"}
            assert await _found(sessions, scope, "banjir lutut") == {"KTN-BJR002"}
        assert [r.name for r in caplog.records].count("storage.desk") == 1  # once, not per search
    finally:
        await engine.dispose()
        await reset_postgres(db_url)
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()
