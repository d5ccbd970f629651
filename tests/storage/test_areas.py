"""Areas CSV import: idempotent, atomic, bad rows named by line."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.areas import (
    AreaImportError,
    ancestors,
    descendant_ids,
    get_by_code,
    import_areas,
    parse_areas_csv,
    sample_csv,
    search_villages,
)
from storage.models import Area

SAMPLE = sample_csv()
HEADER = "code,name,level,parent_code,timezone\n"


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Area)) or 0)


async def load(sessions: async_sessionmaker[AsyncSession], text: str) -> tuple[int, int, int]:
    async with sessions() as s:
        result = await import_areas(s, parse_areas_csv(text))
        await s.commit()
    return result.created, result.updated, result.unchanged


async def test_sample_has_both_pilot_villages(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert await load(sessions, SAMPLE) == (8, 0, 0)
    async with sessions() as s:
        sumber_jaya = await get_by_code(s, "17.71.08.1004")
        wiyono = await get_by_code(s, "18.09.01.2006")
        assert sumber_jaya is not None and sumber_jaya.level == "kelurahan"
        assert wiyono is not None and wiyono.level == "desa"
        names = [a.name for a in await ancestors(s, wiyono)]
        assert names == ["Gedong Tataan", "Pesawaran", "Lampung"]


async def test_reimport_is_idempotent(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SAMPLE)
    assert await load(sessions, SAMPLE) == (0, 0, 8)
    assert await count(sessions) == 8


async def test_reimport_updates_changed_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SAMPLE)
    changed = SAMPLE.replace("Sumber Jaya,kelurahan", "Sumberjaya,kelurahan")
    assert await load(sessions, changed) == (0, 1, 7)
    async with sessions() as s:
        area = await get_by_code(s, "17.71.08.1004")
        assert area is not None and area.name == "Sumberjaya"
    assert await count(sessions) == 8


def test_bad_rows_are_reported_by_line() -> None:
    text = HEADER + (
        "17,Bengkulu,provinsi,,Asia/Jakarta\n"
        "17.71,Kota Bengkulu,city,17,Asia/Jakarta\n"
        "17.72,,kota,17,Asia/Tokyo\n"
        "17,Bengkulu lagi,provinsi,,Asia/Jakarta\n"
    )
    with pytest.raises(AreaImportError) as info:
        parse_areas_csv(text)
    problems = info.value.problems
    assert problems[0].startswith("line 3: level 'city'")
    assert problems[1].startswith("line 4: name is empty") and "Asia/Tokyo" in problems[1]
    assert problems[2] == "line 5: code 17 already given on line 2"


def test_wrong_header_is_refused() -> None:
    with pytest.raises(
        AreaImportError, match="header must be code,name,level,parent_code,timezone"
    ):
        parse_areas_csv("kode,nama\n1,x\n")


async def test_unknown_parent_imports_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    text = (
        HEADER
        + "17,Bengkulu,provinsi,,Asia/Jakarta\n17.71.08.1004,Sumber Jaya,kelurahan,17.71.08,Asia/Jakarta\n"
    )
    async with sessions() as s:
        with pytest.raises(
            AreaImportError, match="line 3: parent_code 17.71.08 is not in the file"
        ):
            await import_areas(s, parse_areas_csv(text))
        await s.rollback()
    assert await count(sessions) == 0


async def test_level_must_sit_below_parent(sessions: async_sessionmaker[AsyncSession]) -> None:
    text = (
        HEADER
        + "17,Bengkulu,provinsi,,Asia/Jakarta\n17.71,Kota,kota,17,Asia/Jakarta\n1,Odd,provinsi,17.71,Asia/Jakarta\n"
    )
    async with sessions() as s:
        with pytest.raises(
            AreaImportError, match="line 4: parent_code is required|cannot sit under"
        ):
            await import_areas(s, parse_areas_csv(text))


async def test_children_may_come_before_parents(sessions: async_sessionmaker[AsyncSession]) -> None:
    lines = SAMPLE.splitlines()
    reversed_text = "\n".join([lines[0], *reversed(lines[1:])]) + "\n"
    assert await load(sessions, reversed_text) == (8, 0, 0)
    async with sessions() as s:
        kota = await get_by_code(s, "17.71")
        assert kota is not None
        assert len(await descendant_ids(s, kota.id)) == 3


async def test_village_search_by_typed_name(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SAMPLE)
    async with sessions() as s:
        assert [a.code for a in await search_villages(s, "kelurahan sumber  JAYA")] == [
            "17.71.08.1004"
        ]
        assert [a.code for a in await search_villages(s, "wiyo")] == ["18.09.01.2006"]
        assert await search_villages(s, "Bengkulu") == []  # a city is not a village
        assert await search_villages(s, "%") == []
