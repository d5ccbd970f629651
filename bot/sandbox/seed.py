"""Demo data: the sample areas, an officer, a coordinator and their group, in the database and
in the fake Telegram.

The database is seeded get-or-create, so a second start adds nothing. The fake keeps its state
in memory, so every start adds the users and the group again.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.database import connect, prepare_schema
from bot.sandbox.demo import AREA_CODE, GROUP_ID, GROUP_TITLE, OFFICER, PEOPLE, STAFF, Person
from bot.sandbox.telegram_fake import TelegramFake
from storage import contacts
from storage.areas import get_by_code, import_areas, parse_areas_csv, sample_csv
from storage.group_links import find_group
from storage.models import Area, Contact, GroupChat
from storage.types import Channel, utcnow

TELEGRAM = Channel.TELEGRAM.value


class SeedError(Exception):
    """The demo data cannot be created; worded for the operator."""


async def seed_database(settings: Settings) -> list[str]:
    """Migrate the sandbox database and add what is missing; returns what was added."""
    db = connect(settings)
    try:
        await prepare_schema(db, settings.database.url)
        async with db.sessions() as session:
            added = await seed_rows(session)
            await session.commit()
    finally:
        await db.close()
    return added


async def seed_rows(session: AsyncSession) -> list[str]:
    """Areas, staff contacts and the alert group, each only when missing (caller commits)."""
    added: list[str] = []
    area = await get_by_code(session, AREA_CODE)
    if area is None:
        area = await _import_sample_areas(session)
        added.append("areas")
    for person in STAFF:
        if await contacts.find(session, TELEGRAM, person.user_id) is None:
            session.add(_staff_contact(person, area))
            added.append(person.role)
    await session.flush()
    if await _alert_group(session) is None:
        await _link_group(session, area)
        added.append("group")
    return added


async def _import_sample_areas(session: AsyncSession) -> Area:
    """Import the packaged sample areas; returns Sumber Jaya."""
    await import_areas(session, parse_areas_csv(sample_csv()))
    area = await get_by_code(session, AREA_CODE)
    if area is None:
        raise SeedError(f"the sample areas have no area {AREA_CODE}")
    return area


def _staff_contact(person: Person, area: Area) -> Contact:
    """A registered, consenting staff member of the area."""
    now = utcnow()
    return Contact(
        channel=TELEGRAM,
        external_id=person.user_id,
        display_name=person.first_name,
        language=person.language_code,
        role=person.role,
        area_id=area.id,
        consent_at=now,
        created_at=now,
    )


async def _link_group(session: AsyncSession, area: Area) -> None:
    """Link the officers' group to the area for alerts, as the officer would."""
    officer = await contacts.find(session, TELEGRAM, OFFICER.user_id)
    session.add(
        GroupChat(
            channel=TELEGRAM,
            chat_id=GROUP_ID,
            area_id=area.id,
            purpose="alerts",
            title=GROUP_TITLE,
            linked_by_id=officer.id if officer else None,
        )
    )


async def _alert_group(session: AsyncSession) -> GroupChat | None:
    """The demo group's link, if it exists."""
    return await find_group(session, TELEGRAM, GROUP_ID)


def seed_fake(fake: TelegramFake) -> None:
    """The three users (each has pressed Start before) and the officers' group with the bot."""
    bot = fake.get_bot()
    # The fake is new on every start but the database is not, and the bot remembers handled
    # update ids: continue from the clock so a fresh "update 1" is not taken for a duplicate.
    bot.next_update_id = time.time_ns() // 1_000_000
    for person in PEOPLE:
        fake.add_user(person.user_id, person.first_name, language_code=person.language_code)
        bot.started.add(person.user_id)  # no /start update: the database already knows them
    fake.add_group(GROUP_ID, GROUP_TITLE, "supergroup", [p.user_id for p in STAFF])
