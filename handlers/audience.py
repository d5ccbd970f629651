"""Who receives what an area's officers' group receives, and one copy per person.

An area's officers meet in its linked group chat(s). Someone on a channel without group chats
(``Capabilities.group_chats`` false, e.g. WhatsApp through Twilio) cannot be in one, so for
delivery they are a member all the same: they get 1:1 what the group gets. So does an officer
whose channel has group chats but whose area has no group on it: nothing else would reach them
(alerts already worked this way). This rule serves alerts, escalations, the "grup petugas"
audience of broadcasts, reminders aimed at groups and tonight's patrol team; it is decided by
what a channel can do, never by its name.

One copy per person: someone may talk to the bot on two channels, as two contacts. Contacts
with the same phone number are one person. When one of them is reached through a group, the
others get no 1:1 copy of that message; of several 1:1 contacts of one person only the most
recently active one gets it (the channel they use now, and on WhatsApp the likeliest to be
inside the 24-hour window). A Telegram account shows the bot no phone number, so a Telegram
contact has one only where it was recorded otherwise (seeded staff); without it the bot cannot
know that two contacts are one person, and each gets its copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.config import CoreConfig
from storage import contacts
from storage.broadcasts import groups_in
from storage.models import Contact, GroupChat
from storage.types import Role

MIN_PHONE_DIGITS = 6  # shorter is no phone number that could name a person


@dataclass(frozen=True, slots=True)
class Reach:
    """Where an officers' group message goes: the groups, and the officers who get it 1:1
    (``people``, one per person); ``via_groups``: the officers the groups reach."""

    groups: list[GroupChat]
    people: list[Contact]
    via_groups: list[Contact]


def in_a_group(config: CoreConfig, contact: Contact, groups: Iterable[GroupChat]) -> bool:
    """Whether one of these groups reaches the contact: their channel has group chats and their
    area has a group on it."""
    if not config.capabilities(contact.channel).group_chats:
        return False
    return any(g.area_id == contact.area_id and g.channel == contact.channel for g in groups)


async def officers_group(
    session: AsyncSession,
    config: CoreConfig,
    area_ids: Sequence[int],
    groups: list[GroupChat] | None = None,
) -> Reach:
    """The officers' group of these areas: their group chats (``groups``, else every group
    linked to them) and, 1:1, each officer no group reaches."""
    if groups is None:
        groups = await groups_in(session, area_ids)
    officers = await contacts.staff_in_areas(session, area_ids, [Role.OFFICER.value])
    via = [o for o in officers if in_a_group(config, o, groups)]
    direct = [o for o in officers if not in_a_group(config, o, groups)]
    return Reach(groups, one_per_person(direct, reached=via), via)


def person_of(contact: Contact) -> str | None:
    """The person a contact belongs to: the digits of their phone number, if known."""
    digits = "".join(ch for ch in contact.phone or "" if ch.isdigit())
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def _last_seen(contact: Contact) -> datetime | None:
    return contact.last_inbound_at or contact.created_at


def one_per_person(people: Iterable[Contact], reached: Iterable[Contact] = ()) -> list[Contact]:
    """``people`` with each person once (in their order): nobody ``reached`` already (through a
    group), and of one person's contacts the most recently active one."""
    taken = {key for c in reached if (key := person_of(c)) is not None}
    unique: list[Contact] = []
    ids: set[int] = set()
    best: dict[str, Contact] = {}
    for contact in people:
        if contact.id in ids:
            continue
        ids.add(contact.id)
        unique.append(contact)
        key = person_of(contact)
        if key is None or key in taken:
            continue
        other = best.get(key)
        if other is None or _newer(contact, other):
            best[key] = contact
    return [c for c in unique if (key := person_of(c)) is None or best.get(key) is c]


def _newer(a: Contact, b: Contact) -> bool:
    seen_a, seen_b = _last_seen(a), _last_seen(b)
    if seen_a is None or seen_b is None:
        return seen_b is None and seen_a is not None
    return seen_a > seen_b
