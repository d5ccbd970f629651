"""A person's own data (UU PDP No. 27/2022): what is kept about them (``/dataku``,
``data_of``), and erasing them everywhere (``/hapusdata``, ``erase``).

What erasing removes: the contact row itself; rows that exist only for them (follows, desk
sign-ins, their places in ronda teams with their names, conversations, messages to their chat,
sent or not); what they wrote or sent (their reports' descriptions, addresses and files, the
notes they added, what an Open311 system said about them). What stays: their reports, for the
officers' record, without the person: no reporter, anonymous, the description replaced by a
marker ("dihapus atas permintaan pelapor"), no files. Messages about those reports to other
people keep their place but lose the person's words (``_scrub_outbox``). Only a keyed hash of
(channel, chat id) is kept (``ErasedContact``), so that the person, should they write again, is
not signed up for announcements without asking.

Which columns refer to a contact is read from the models' foreign keys, not listed by hand: a
table added later is covered (its rows deleted or its reference cleared, as its ``ondelete``
says) without a change here. The caller commits, and deletes the files and the channel's
copies after the commit (``Erased``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, Text, cast, delete, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.drafts import media_origins, media_refs
from storage.models import (
    Area,
    Base,
    Contact,
    Conversation,
    ErasedContact,
    MediaBlob,
    Open311Request,
    Outbox,
    PatrolMember,
    PatrolTeam,
    Report,
    ReportEvent,
    ReportFollower,
    ReportMedia,
)

# What replaces each of the person's strings in a stored message, in its language (or None).
Replacements = Callable[[str | None], Mapping[str, str]]
_MIN_NEEDLE = 3  # shorter strings would scrub ordinary words


@dataclass(slots=True)
class Erased:
    """What erasing found and left to do after the commit: ``reports`` kept without the
    person, ``files`` (media store refs) no longer referred to by them, ``origins`` the
    channel's own copies to delete there (queued as ``media_delete`` rows by the caller)."""

    reports: int = 0
    files: set[str] = field(default_factory=set)
    origins: list[tuple[str, str]] = field(default_factory=list)  # (channel, url)


async def is_erased(session: AsyncSession, id_hash: str) -> bool:
    """Whether someone with this keyed hash of (channel, chat id) asked to be erased."""
    return await session.get(ErasedContact, id_hash) is not None


async def personal_texts(session: AsyncSession, contact: Contact) -> list[str]:
    """What the person wrote or is known by, beyond name and phone: their reports' stories
    and addresses, the notes they added to any report, what an Open311 system said about
    them (the strings to scrub from stored messages)."""
    mine = _theirs(contact)
    texts: list[str] = []
    for description, address in (
        await session.execute(
            select(Report.description, Report.address_text).where(Report.id.in_(mine))
        )
    ).all():
        texts += [description or "", address or ""]
    texts += [
        note or ""
        for note in (
            await session.scalars(
                select(ReportEvent.note).where(
                    ReportEvent.actor_id == contact.id, ReportEvent.report_id.in_(mine)
                )
            )
        ).all()
    ]
    for row in (
        await session.scalars(
            select(Open311Request).where(
                or_(
                    Open311Request.report_id.in_(mine),
                    Open311Request.linked_contact_id == contact.id,
                )
            )
        )
    ).all():
        texts += [
            f"{row.first_name or ''} {row.last_name or ''}".strip(),  # as alerts show it
            row.email or "",
            row.phone or "",
            row.device_id or "",
            row.account_id or "",
        ]
    return [t for t in dict.fromkeys(texts) if len(t.strip()) >= _MIN_NEEDLE]


async def erase(
    session: AsyncSession,
    contact: Contact,
    *,
    now: datetime,
    id_hash: str,
    marker: str,
    replacements: Replacements,
) -> Erased:
    """Erase the person everywhere (see the module's docstring); the caller commits.

    ``marker`` replaces their reports' descriptions and their notes; in stored messages to
    other people, ``replacements(lang)`` says what replaces each of their strings (their
    name, phone, chat id, texts, and the shortened forms messages show) in that language."""
    found = Erased()
    channel, external_id = contact.channel, contact.external_id
    mine = list((await session.scalars(_theirs(contact))).all())
    found.reports = len(mine)
    # Their files: the report's own (not an officer's closure photo), and their drafts'.
    if mine:
        media = (
            await session.scalars(
                select(ReportMedia).where(
                    ReportMedia.report_id.in_(mine), ReportMedia.purpose == "report"
                )
            )
        ).all()
        for item in media:
            if item.store_ref:
                found.files.add(item.store_ref)
            if item.origin:
                found.origins.append((item.channel, item.origin))
        await session.execute(
            delete(ReportMedia).where(
                ReportMedia.report_id.in_(mine), ReportMedia.purpose == "report"
            )
        )
        await session.execute(
            update(ReportEvent)
            .where(
                ReportEvent.report_id.in_(mine),
                ReportEvent.actor_id == contact.id,
                ReportEvent.note.is_not(None),
            )
            .values(note=marker)
        )
        await session.execute(
            update(Report)
            .where(Report.id.in_(mine))
            .values(
                reporter_id=None,
                anonymous=True,
                description=marker,
                address_text=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    await _forget_open311(session, contact, mine)
    await _scrub_outbox(session, contact, replacements)
    own_chat = (Conversation.channel == contact.channel) & or_(
        Conversation.user_id == contact.external_id, Conversation.chat_id == contact.external_id
    )
    for draft in (await session.scalars(select(Conversation.draft).where(own_chat))).all():
        found.files |= media_refs(draft)
        found.origins += [(channel, url) for url in sorted(media_origins(draft))]
    await session.execute(delete(Conversation).where(own_chat))
    owned = select(MediaBlob.ref).where(MediaBlob.owner_id == contact.id)
    found.files |= set((await session.scalars(owned)).all())  # their /dataku copies
    await session.execute(delete(PatrolMember).where(PatrolMember.contact_id == contact.id))
    await _drop_references(session, contact.id)
    await session.execute(delete(Contact).where(Contact.id == contact.id))
    for loaded in list(session.identity_map.values()):  # gone: nothing may write them back
        if (isinstance(loaded, Contact) and loaded is contact) or (
            isinstance(loaded, Conversation)
            and loaded.channel == channel
            and external_id in (loaded.user_id, loaded.chat_id)
        ):
            session.expunge(loaded)
    await _remember(session, id_hash, now)
    return found


def _theirs(contact: Contact) -> Select[int]:
    """The reports that are the person's: filed by them in a chat, or filed for their phone
    number through Open311 and linked to them when they wrote (the story is theirs too)."""
    linked = select(Open311Request.report_id).where(Open311Request.linked_contact_id == contact.id)
    return select(Report.id).where(or_(Report.reporter_id == contact.id, Report.id.in_(linked)))


async def _forget_open311(session: AsyncSession, contact: Contact, mine: Sequence[int]) -> None:
    """What a submitting system said about the person, on their reports or linked to them."""
    personal = {
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
        "device_id": None,
        "account_id": None,
        "linked_contact_id": None,
    }
    condition: ColumnElement[bool] = Open311Request.linked_contact_id == contact.id
    if mine:
        condition = or_(condition, Open311Request.report_id.in_(mine))
    await session.execute(update(Open311Request).where(condition).values(**personal))


async def _scrub_outbox(
    session: AsyncSession, contact: Contact, replacements: Replacements
) -> None:
    """Messages to the person go, sent or not (nothing more is sent to them; nothing kept);
    messages to others that quote them (alerts and their edits, boards, patrol messages
    naming them) lose their words. Found by the stored JSON's text, whatever the kind."""
    # Two statements, each on its index (ix_outbox_contact_id, ix_outbox_chat_status): one with
    # OR read the whole table.
    await session.execute(delete(Outbox).where(Outbox.contact_id == contact.id))
    await session.execute(
        delete(Outbox).where(
            Outbox.chat_id == contact.external_id, Outbox.channel == contact.channel
        )
    )
    needles = [n for n in replacements(None) if len(n.strip()) >= _MIN_NEEDLE]
    if not needles:
        return
    # As the JSON column stores them (non-ASCII escaped): the search runs in the database. It
    # reads every row, in the caller's write transaction (bench/erasure.py, 1,000,000 rows:
    # ~1.2 s on SQLite, where every other writer waits, ~2.3 s on PostgreSQL).
    stored = [json.dumps(n)[1:-1] for n in needles]
    quoting = or_(*(cast(Outbox.payload, Text).contains(s, autoescape=True) for s in stored))
    for row in (await session.scalars(select(Outbox).where(quoting))).all():
        lang = row.payload.get("lang")
        mapping = replacements(lang if isinstance(lang, str) else None)
        ordered = sorted(mapping.items(), key=lambda item: len(item[0]), reverse=True)
        scrubbed = _replace(row.payload, ordered)
        if scrubbed != row.payload:
            row.payload = scrubbed


def _replace(value: Any, pairs: Sequence[tuple[str, str]]) -> Any:
    """``value`` (a JSON payload) with every needle in every string replaced."""
    if isinstance(value, str):
        for needle, replacement in pairs:
            if len(needle.strip()) >= _MIN_NEEDLE and needle in value:
                value = value.replace(needle, replacement)
        return value
    if isinstance(value, dict):
        return {k: _replace(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, pairs) for v in value]
    return value


async def _drop_references(session: AsyncSession, contact_id: int) -> None:
    """Every row that refers to the contact, found through the models' foreign keys: deleted
    where the key says CASCADE (it exists only for them), else the reference cleared."""
    contacts = Contact.__table__
    for table in Base.metadata.sorted_tables:
        assert isinstance(table, Table)
        for fk in table.foreign_keys:
            if fk.column.table is not contacts or table is contacts:
                continue
            column = fk.parent
            if (fk.ondelete or "").upper() == "CASCADE":
                await session.execute(delete(table).where(column == contact_id))
            else:
                await session.execute(
                    update(table).where(column == contact_id).values({column.name: None})
                )


async def _remember(session: AsyncSession, id_hash: str, now: datetime) -> None:
    """Keep the keyed hash (again: someone may erase, come back, and erase again)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(ErasedContact).values(id_hash=id_hash, erased_at=now).on_conflict_do_nothing()
    )


# --- access (/dataku) ---------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def data_of(session: AsyncSession, contact: Contact) -> dict[str, Any]:
    """Everything kept about the person, as JSON-ready data: the contact and consent, their
    reports with their trail and files (a list: the files' bytes are not repeated), the
    reports they follow, their ronda teams, what an Open311 system said about them."""
    area = await session.get(Area, contact.area_id) if contact.area_id is not None else None
    reports = (
        await session.scalars(
            select(Report).where(Report.reporter_id == contact.id).order_by(Report.id)
        )
    ).all()
    ids = [r.id for r in reports]
    events: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    files: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for event in (
            await session.scalars(
                select(ReportEvent)
                .where(ReportEvent.report_id.in_(ids))
                .order_by(ReportEvent.created_at, ReportEvent.id)
            )
        ).all():
            events[event.report_id].append(
                {
                    "at": _when(event.created_at),
                    "kind": event.kind,
                    "from_status": event.from_status,
                    "to_status": event.to_status,
                    "by_you": event.actor_id == contact.id,
                    # an officer's note is the record of their work; the person's own is theirs
                    "note": event.note if event.actor_id == contact.id else None,
                }
            )
        for item in (
            await session.scalars(
                select(ReportMedia).where(ReportMedia.report_id.in_(ids)).order_by(ReportMedia.id)
            )
        ).all():
            files[item.report_id].append(
                {
                    "kind": item.kind,
                    "purpose": item.purpose,
                    "content_type": item.content_type,
                    "size": item.size,
                    "at": _when(item.created_at),
                }
            )
    followed = (
        await session.scalars(
            select(Report.ticket)
            .join(ReportFollower, ReportFollower.report_id == Report.id)
            .where(ReportFollower.contact_id == contact.id)
            .order_by(Report.id)
        )
    ).all()
    teams = (
        await session.execute(
            select(PatrolTeam.name, PatrolMember.name, Area.name)
            .join(PatrolMember, PatrolMember.team_id == PatrolTeam.id)
            .join(Area, Area.id == PatrolTeam.area_id)
            .where(PatrolMember.contact_id == contact.id)
            .order_by(PatrolTeam.id)
        )
    ).all()
    submitted = (
        await session.scalars(
            select(Open311Request).where(
                or_(
                    Open311Request.linked_contact_id == contact.id,
                    Open311Request.report_id.in_(ids) if ids else false(),
                )
            )
        )
    ).all()
    return {
        "contact": {
            "channel": contact.channel,
            "chat_id": contact.external_id,
            "name": contact.display_name,
            "phone": contact.phone,
            "language": contact.language,
            "role": contact.role,
            "area": area.name if area else None,
            "created_at": _when(contact.created_at),
            "last_message_at": _when(contact.last_inbound_at),
        },
        "consent": {
            "given_at": _when(contact.consent_at),
            "announcements_stopped_at": _when(contact.opted_out_at),
        },
        "reports": [
            {
                "ticket": r.ticket,
                "category": r.category,
                "status": r.status,
                "description": r.description,
                "address": r.address_text,
                "latitude": r.latitude,
                "longitude": r.longitude,
                "anonymous": r.anonymous,
                "urgent": r.urgent,
                "created_at": _when(r.created_at),
                "closed_at": _when(r.closed_at),
                "resolution_note": r.resolution_note,
                "trail": events[r.id],
                "files": files[r.id],
            }
            for r in reports
        ],
        "following": list(followed),
        "ronda_teams": [
            {"team": team, "name_in_team": name, "area": area_name}
            for team, name, area_name in teams
        ],
        "open311": [
            {
                "first_name": s.first_name,
                "last_name": s.last_name,
                "email": s.email,
                "phone": s.phone,
                "at": _when(s.created_at),
            }
            for s in submitted
        ],
    }
