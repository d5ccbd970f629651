"""Invites: single-use, expiring codes that make a contact staff of an area."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area, Contact, Invite
from storage.types import Role

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones
CODE_LENGTH = 10
_DURATION = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RedeemResult(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '2w' -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def normalise_code(text: str) -> str:
    """Upper-case the code and drop spaces and dashes people type."""
    return re.sub(r"[\s\-]", "", text).upper()


async def create_invite(
    session: AsyncSession, *, role: Role, area: Area, valid_for: timedelta, now: datetime
) -> Invite:
    """A new invite; the caller commits."""
    if role is Role.RESIDENT:
        raise ValueError("invites are for officers, coordinators and admins")
    invite = Invite(
        code="".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)),
        role=role.value,
        area_id=area.id,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(invite)
    await session.flush()
    return invite


async def redeem_invite(
    session: AsyncSession, code: str, contact: Contact, now: datetime
) -> tuple[RedeemResult, Invite | None]:
    """Use the invite once: the contact takes its role and area. The caller commits."""
    code = normalise_code(code)
    invite = await session.scalar(select(Invite).where(Invite.code == code))
    if invite is None:
        return RedeemResult.UNKNOWN, None
    if invite.used_at is not None:
        return RedeemResult.USED, invite
    if invite.expires_at <= now:
        return RedeemResult.EXPIRED, invite
    # Conditional update: two redeemers racing for one code cannot both win.
    claimed = await session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=now, used_by_id=contact.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return RedeemResult.USED, invite
    await session.refresh(invite)
    contact.role = invite.role
    contact.area_id = invite.area_id
    await session.flush()
    return RedeemResult.OK, invite
