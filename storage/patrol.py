"""Ronda (siskamling): teams, the rotation, each night's shift and the members' answers.

A shift row is unique per area and local date, so announcing tonight's team twice (a restart, a
second worker) finds the row and stops. ``patrol_confirmations`` is what the recap reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PatrolConfirmation, PatrolMember, PatrolRota, PatrolShift, PatrolTeam

MODES = ("daily", "weekly")
SKIPPED = "skipped"  # a shift whose announcement was missed beyond the grace


@dataclass(frozen=True, slots=True)
class Team:
    """A team and its members, in rotation order."""

    team: PatrolTeam
    members: list[PatrolMember]


@dataclass(frozen=True, slots=True)
class ConfirmationRow:
    """One member of one shift's team and what they answered (None: nothing yet, or missed)."""

    area_id: int
    shift_id: int
    shift_date: str
    announced_at: datetime
    team_id: int
    team_name: str
    member_id: int
    member_name: str
    contact_id: int | None
    confirmed_at: datetime | None
    outcome: str | None
    outcome_at: datetime | None


async def add_team(
    session: AsyncSession, area_id: int, name: str, member_names: Sequence[str]
) -> Team:
    """A new team at the end of the rotation (flushed)."""
    last = await session.scalar(
        select(func.max(PatrolTeam.position)).where(PatrolTeam.area_id == area_id)
    )
    team = PatrolTeam(area_id=area_id, name=name[:120], position=(last or 0) + 1)
    session.add(team)
    await session.flush()
    members = [PatrolMember(team_id=team.id, name=n[:120]) for n in member_names]
    session.add_all(members)
    await session.flush()
    return Team(team, members)


async def teams_of(session: AsyncSession, area_id: int) -> list[Team]:
    """The area's teams in rotation order, with their members."""
    found = (
        await session.scalars(
            select(PatrolTeam)
            .where(PatrolTeam.area_id == area_id)
            .order_by(PatrolTeam.position, PatrolTeam.id)
        )
    ).all()
    result = []
    for team in found:
        members = (
            await session.scalars(
                select(PatrolMember)
                .where(PatrolMember.team_id == team.id)
                .order_by(PatrolMember.id)
            )
        ).all()
        result.append(Team(team, list(members)))
    return result


async def delete_team(session: AsyncSession, team: PatrolTeam) -> None:
    """Remove a team and its members (past shifts of it go too)."""
    await session.execute(delete(PatrolTeam).where(PatrolTeam.id == team.id))


async def join_team(
    session: AsyncSession, team: PatrolTeam, contact_id: int, name: str
) -> PatrolMember:
    """Link the contact to the team: to an unlinked member of that name, or as a new member."""
    members = (
        await session.scalars(select(PatrolMember).where(PatrolMember.team_id == team.id))
    ).all()
    for member in members:
        if member.contact_id == contact_id:
            return member
    for member in members:
        if member.contact_id is None and member.name.casefold() == name.casefold():
            member.contact_id = contact_id
            return member
    member = PatrolMember(team_id=team.id, name=name[:120], contact_id=contact_id)
    session.add(member)
    await session.flush()
    return member


async def rota_of(session: AsyncSession, area_id: int) -> PatrolRota | None:
    """The area's rotation, if set."""
    return await session.scalar(select(PatrolRota).where(PatrolRota.area_id == area_id))


async def set_rota(
    session: AsyncSession, area_id: int, mode: str, announce_time: str, start: date
) -> PatrolRota:
    """Set (or replace) the area's rotation; the first team starts on ``start``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    rota = await rota_of(session, area_id)
    if rota is None:
        rota = PatrolRota(area_id=area_id)
        session.add(rota)
    rota.mode = mode
    rota.announce_time = announce_time
    rota.start_date = start.isoformat()
    rota.paused = False
    await session.flush()
    return rota


async def active_rotas(session: AsyncSession) -> list[PatrolRota]:
    """Every rotation that is not paused."""
    stmt = select(PatrolRota).where(PatrolRota.paused.is_(False)).order_by(PatrolRota.area_id)
    return list((await session.scalars(stmt)).all())


def team_on(teams: Sequence[Team], rota: PatrolRota, day: date) -> Team | None:
    """Whose turn it is on that local date: one team per day, or per week (from the start)."""
    if not teams:
        return None
    elapsed = (day - date.fromisoformat(rota.start_date)).days
    turn = elapsed // 7 if rota.mode == "weekly" else elapsed
    return teams[turn % len(teams)]


async def shift_on(session: AsyncSession, area_id: int, day: date) -> PatrolShift | None:
    """The area's shift on that local date, if it was announced."""
    return await session.scalar(
        select(PatrolShift).where(
            PatrolShift.area_id == area_id, PatrolShift.shift_date == day.isoformat()
        )
    )


async def create_shift(
    session: AsyncSession, area_id: int, team_id: int, day: date, now: datetime
) -> PatrolShift | None:
    """Record tonight's shift; None when it exists already (announced before)."""
    if await shift_on(session, area_id, day) is not None:
        return None
    shift = PatrolShift(
        area_id=area_id, team_id=team_id, shift_date=day.isoformat(), confirmations={}
    )
    shift.created_at = now
    session.add(shift)
    await session.flush()
    return shift


async def answer_of(
    session: AsyncSession, shift_id: int, member_id: int
) -> PatrolConfirmation | None:
    """The member's answer row for the shift, if any."""
    return await session.scalar(
        select(PatrolConfirmation).where(
            PatrolConfirmation.shift_id == shift_id, PatrolConfirmation.member_id == member_id
        )
    )


async def record_answer(
    session: AsyncSession,
    shift_id: int,
    member_id: int,
    now: datetime,
    *,
    outcome: str | None = None,
) -> tuple[PatrolConfirmation, bool]:
    """Mark the member present (and the outcome, if given); (row, whether this changed it)."""
    row = await answer_of(session, shift_id, member_id)
    if row is None:
        row = PatrolConfirmation(shift_id=shift_id, member_id=member_id)
        session.add(row)
    changed = False
    if row.confirmed_at is None:
        row.confirmed_at, changed = now, True
    if outcome is not None and row.outcome is None:
        row.outcome, row.outcome_at, changed = outcome, now, True
    await session.flush()
    return row, changed


async def member_of_shift(
    session: AsyncSession, shift: PatrolShift, contact_id: int
) -> PatrolMember | None:
    """The contact's member row in the shift's team, or None (not on that team)."""
    return await session.scalar(
        select(PatrolMember).where(
            PatrolMember.team_id == shift.team_id, PatrolMember.contact_id == contact_id
        )
    )


async def patrol_confirmations(
    session: AsyncSession, area_ids: Sequence[int], since: datetime, until: datetime
) -> list[ConfirmationRow]:
    """Every member of every shift announced in [since, until) in these areas, with their answer
    (confirmed_at None = no "Hadir"), by shift date then member."""
    stmt = (
        select(PatrolShift, PatrolTeam, PatrolMember, PatrolConfirmation)
        .join(PatrolTeam, PatrolTeam.id == PatrolShift.team_id)
        .join(PatrolMember, PatrolMember.team_id == PatrolTeam.id)
        .outerjoin(
            PatrolConfirmation,
            and_(
                PatrolConfirmation.shift_id == PatrolShift.id,
                PatrolConfirmation.member_id == PatrolMember.id,
            ),
        )
        .where(
            PatrolShift.area_id.in_(list(area_ids)),
            PatrolShift.created_at >= since,
            PatrolShift.created_at < until,
            or_(PatrolShift.outcome.is_(None), PatrolShift.outcome != SKIPPED),
        )
        .order_by(PatrolShift.shift_date, PatrolShift.area_id, PatrolMember.id)
    )
    rows = []
    for shift, team, member, answer in await session.execute(stmt):
        rows.append(
            ConfirmationRow(
                area_id=shift.area_id,
                shift_id=shift.id,
                shift_date=shift.shift_date,
                announced_at=shift.created_at,
                team_id=team.id,
                team_name=team.name,
                member_id=member.id,
                member_name=member.name,
                contact_id=member.contact_id,
                confirmed_at=answer.confirmed_at if answer else None,
                outcome=answer.outcome if answer else None,
                outcome_at=answer.outcome_at if answer else None,
            )
        )
    return rows


async def latest_shift_of_member(
    session: AsyncSession, contact_id: int, since: datetime
) -> tuple[PatrolShift, PatrolMember] | None:
    """The newest shift announced since then whose team has the contact as a member (not one
    skipped), with their member row; None if there is none."""
    stmt = (
        select(PatrolShift, PatrolMember)
        .join(PatrolMember, PatrolMember.team_id == PatrolShift.team_id)
        .where(
            PatrolMember.contact_id == contact_id,
            PatrolShift.created_at >= since,
            or_(PatrolShift.outcome.is_(None), PatrolShift.outcome != SKIPPED),
        )
        .order_by(PatrolShift.created_at.desc(), PatrolShift.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def latest_shift(session: AsyncSession, area_id: int, since: datetime) -> PatrolShift | None:
    """The area's newest shift announced since then (not one skipped), if any."""
    found: PatrolShift | None = await session.scalar(
        select(PatrolShift)
        .where(
            PatrolShift.area_id == area_id,
            PatrolShift.created_at >= since,
            or_(PatrolShift.outcome.is_(None), PatrolShift.outcome != SKIPPED),
        )
        .order_by(PatrolShift.created_at.desc(), PatrolShift.id.desc())
        .limit(1)
    )
    return found
