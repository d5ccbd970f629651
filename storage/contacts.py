"""Contacts: the people who talk to the bot, one row per channel and user id."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Contact


async def find(session: AsyncSession, channel: str, external_id: int) -> Contact | None:
    """The contact with this channel and user id, or None."""
    return await session.scalar(
        select(Contact).where(Contact.channel == str(channel), Contact.external_id == external_id)
    )


async def find_for_update(session: AsyncSession, channel: str, external_id: int) -> Contact | None:
    """Like ``find`` but locks the row (PostgreSQL) until the transaction ends."""
    return await session.scalar(
        select(Contact)
        .where(Contact.channel == str(channel), Contact.external_id == external_id)
        .with_for_update()
    )


async def create(
    session: AsyncSession, *, channel: str, external_id: int, language: str, now: datetime
) -> Contact:
    """Insert a new contact; a concurrent insert raises IntegrityError (the caller retries)."""
    contact = Contact(
        channel=str(channel),
        external_id=external_id,
        language=language,
        role="resident",
        created_at=now,
        last_inbound_at=now,
    )
    session.add(contact)
    await session.flush()
    return contact


def record_inbound(
    contact: Contact,
    *,
    display_name: str | None,
    phone: str | None,
    now: datetime,
    bot: str | None = None,
) -> None:
    """Note the time of a private message (and the bot it came to: the one that can answer);
    keep name and phone only after consent.

    Someone who writes to the bot has not blocked it (any more): ``blocked_at`` is cleared.
    """
    contact.last_inbound_at = now
    if bot is not None and contact.bot != bot:
        contact.bot = bot
    if contact.blocked_at is not None:
        contact.blocked_at = None
    if contact.consent_at is None:
        return
    name = (display_name or "").strip()[:128] or None
    if name and contact.display_name != name:
        contact.display_name = name
    if phone and contact.phone != phone[:20]:
        contact.phone = phone[:20]


def give_consent(
    contact: Contact, *, display_name: str | None, phone: str | None, now: datetime
) -> None:
    """The contact agreed to the privacy notice: from now on name and phone are kept."""
    contact.consent_at = now
    record_inbound(contact, display_name=display_name, phone=phone, now=now)


def forget_personal_fields(contact: Contact) -> None:
    """Drop name and phone (used when someone declines consent)."""
    contact.display_name = None
    contact.phone = None


async def staff_in_area(session: AsyncSession, area_id: int, roles: Sequence[str]) -> list[Contact]:
    """Contacts with one of these roles in exactly this area who can be written to."""
    stmt = (
        select(Contact)
        .where(
            Contact.area_id == area_id,
            Contact.role.in_(list(roles)),
            Contact.erased_at.is_(None),
            Contact.blocked_at.is_(None),
        )
        .order_by(Contact.id)
    )
    return list((await session.scalars(stmt)).all())


async def staff_in_areas(
    session: AsyncSession, area_ids: Sequence[int], roles: Sequence[str]
) -> list[Contact]:
    """Contacts with one of these roles in any of these areas who can be written to, by id."""
    stmt = (
        select(Contact)
        .where(
            Contact.area_id.in_(list(area_ids)),
            Contact.role.in_(list(roles)),
            Contact.erased_at.is_(None),
            Contact.blocked_at.is_(None),
        )
        .order_by(Contact.id)
    )
    return list((await session.scalars(stmt)).all())


async def mark_blocked(session: AsyncSession, contact_ids: Collection[int], now: datetime) -> None:
    """These contacts blocked the bot (a send was refused): nothing more is sent to them.
    The caller commits."""
    await session.execute(update(Contact).where(Contact.id.in_(contact_ids)).values(blocked_at=now))


async def recipient(
    session: AsyncSession, contact_id: int | None, channel: str, external_id: int
) -> Contact | None:
    """The contact an outbox row is addressed to: by its id, else by channel and chat id."""
    if contact_id is not None:
        contact = await session.get(Contact, contact_id)
        if contact is not None:
            return contact
    found: Contact | None = await session.scalar(
        select(Contact).where(Contact.channel == channel, Contact.external_id == external_id)
    )
    return found


async def reachable_with_roles(session: AsyncSession, roles: Sequence[str]) -> list[Contact]:
    """Contacts with one of these roles and an area who can be written to, by id."""
    stmt = (
        select(Contact)
        .where(
            Contact.role.in_(roles),
            Contact.area_id.is_not(None),
            Contact.erased_at.is_(None),
            Contact.blocked_at.is_(None),
        )
        .order_by(Contact.id)
    )
    return list((await session.scalars(stmt)).all())
