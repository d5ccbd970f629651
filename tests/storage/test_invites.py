"""Invites: single use, expiring, and safe when two people race for one code."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.areas import get_by_code, import_areas, parse_areas_csv, sample_csv
from storage.invites import RedeemResult, create_invite, parse_duration, redeem_invite
from storage.models import Contact
from storage.types import Role, utcnow

SAMPLE = sample_csv()


async def setup(
    sessions: async_sessionmaker[AsyncSession], valid_for: timedelta
) -> tuple[str, list[int]]:
    async with sessions() as s:
        await import_areas(s, parse_areas_csv(SAMPLE))
        area = await get_by_code(s, "17.71.08.1004")
        assert area is not None
        invite = await create_invite(
            s, role=Role.OFFICER, area=area, valid_for=valid_for, now=utcnow()
        )
        people = [
            Contact(channel="telegram", external_id=100 + i, display_name=f"P{i}") for i in range(2)
        ]
        s.add_all(people)
        await s.commit()
        return invite.code, [p.id for p in people]


async def redeem(
    sessions: async_sessionmaker[AsyncSession],
    code: str,
    contact_id: int,
    later: timedelta = timedelta(0),
) -> RedeemResult:
    async with sessions() as s:
        contact = await s.get(Contact, contact_id)
        assert contact is not None
        result, _ = await redeem_invite(s, code, contact, utcnow() + later)
        await s.commit()
        return result


async def test_invite_makes_officer_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    code, (first, second) = await setup(sessions, timedelta(days=7))
    assert await redeem(sessions, code.lower(), first) is RedeemResult.OK
    assert await redeem(sessions, code, second) is RedeemResult.USED
    async with sessions() as s:
        officer = await s.get(Contact, first)
        other = await s.get(Contact, second)
        assert officer is not None and officer.role == "officer" and officer.area_id is not None
        assert other is not None and other.role == "resident"


async def test_invite_expires(sessions: async_sessionmaker[AsyncSession]) -> None:
    code, (first, _) = await setup(sessions, timedelta(hours=1))
    assert await redeem(sessions, code, first, later=timedelta(hours=2)) is RedeemResult.EXPIRED
    assert await redeem(sessions, "NOSUCHCODE", first) is RedeemResult.UNKNOWN


async def test_racing_redeemers_one_wins(sessions: async_sessionmaker[AsyncSession]) -> None:
    code, people = await setup(sessions, timedelta(days=1))
    results = await asyncio.gather(*(redeem(sessions, code, p) for p in people))
    assert sorted(results) == sorted([RedeemResult.OK, RedeemResult.USED])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2W", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "0d", "-1d", "7 days", "d7"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
