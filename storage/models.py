"""SQLAlchemy 2 models: everything ktn-bot remembers.

Chat and user ids are BigInteger (Telegram supergroup ids overflow int32). Every timestamp is an
aware UTC datetime on both backends (see ``UTCDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.drafts import Draft
from storage.types import DEFAULT_BOT, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Area(Base):
    """A place in the Kemendagri hierarchy: provinsi ... kelurahan/desa, RW, RT."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    timezone: Mapped[str] = mapped_column(String(40), default="Asia/Jakarta")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side=[id], lazy="raise")

    __table_args__ = (Index("ix_areas_parent_id", "parent_id"), Index("ix_areas_name", "name"))


class Contact(Base):
    """Someone who talks to the bot on one channel (a Telegram user, a WhatsApp number)."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    # Telegram user id, or the WhatsApp WaId (E.164 digits): both fit a BigInteger.
    external_id: Mapped[int] = mapped_column(BigInteger)
    display_name: Mapped[str | None] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5), default="id")
    role: Mapped[str] = mapped_column(String(16), default="resident")
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    consent_at: Mapped[datetime | None]
    opted_out_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    blocked_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The Telegram bot of their latest private message: only that bot can write to them.
    # NULL (a contact made without a message): the bot serving their area.
    bot: Mapped[str | None] = mapped_column(String(32))

    area: Mapped[Area | None] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_contacts_area_role", "area_id", "role"),
    )


class GroupChat(Base):
    """A group chat linked to an area (one group serves one area per purpose)."""

    __tablename__ = "group_chats"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16), default="alerts")
    title: Mapped[str | None] = mapped_column(String(255))
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The bot /hubungkan was sent to (alerts reach the group through it); NULL: the area's bot.
    bot: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("channel", "chat_id"),
        Index("ix_group_chats_area_purpose", "area_id", "purpose"),
    )


class Invite(Base):
    """A single-use code that makes its redeemer officer, coordinator or admin of an area."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))


# The desk's list index (bot/web/desk): its order, then what its filters read.
DESK_LIST_COLUMNS = (
    "created_at",
    "id",
    "area_id",
    "status",
    "category",
    "urgent",
    "assignee_id",
    "latitude",
    "longitude",
)


class Report(Base):
    """An incident reported by a resident."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket: Mapped[str] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address_text: Mapped[str | None] = mapped_column(Text)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    claimed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    escalate_at: Mapped[datetime | None]
    # The report this one was merged into (status "duplicate"): its reporter and followers
    # follow that one now (``handlers.lifecycle``).
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL")
    )
    # How far up the escalation went: 0 not yet, 1 the parent area, 2 the one above, ...
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When retention stripped the closed report of its personal fields (``storage.privacy``):
    # what stays is for statistics (category, area, times, status).
    personal_purged_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_reports_area_status_created", "area_id", "status", "created_at"),
        Index("ix_reports_personal_purged", "personal_purged_at", "closed_at"),
        Index("ix_reports_reporter_id", "reporter_id"),
        Index("ix_reports_escalate_at", "escalate_at"),
        # the desk (bot/web/desk): newest first, by officer, and its numbers' time ranges
        # newest first with every structured filter inside the index (no table reads to filter)
        Index("ix_reports_desk_list", *DESK_LIST_COLUMNS),
        Index("ix_reports_assignee_created", "assignee_id", "created_at"),
        Index("ix_reports_claimed_at", "claimed_at", "area_id", "created_at", "assignee_id"),
        Index(
            "ix_reports_closed_at", "closed_at", "status", "area_id", "created_at", "assignee_id"
        ),
        Index("ix_reports_escalated_at", "escalated_at", "area_id"),
        Index("ix_reports_status_escalate_at", "status", "escalate_at", "area_id"),
    )


class ReportMedia(Base):
    """A photo, voice note or document attached to a report."""

    __tablename__ = "report_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    file_ref: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    local_path: Mapped[str | None] = mapped_column(Text)  # unused since the media store (0005)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The file in ktn-bot's own media store (``sha256:<hex>``, ``storage.media``) and its size;
    # NULL for a file attached before the store existed (``file_ref`` is then all there is).
    store_ref: Mapped[str | None] = mapped_column(String(80), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    # "report": sent with the report; "closure": the officer's proof that it was dealt with.
    purpose: Mapped[str] = mapped_column(String(16), default="report", server_default="report")
    # Where the channel still holds its own copy that can be deleted there (a Twilio media URL):
    # erasing the sender deletes it at the channel too (``storage.erasure``). NULL: none known.
    origin: Mapped[str | None] = mapped_column(Text)


class ReportFollower(Base):
    """A resident who follows someone else's report ("ikut pantau") and gets its news."""

    __tablename__ = "report_followers"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportEvent(Base):
    """The audit trail: every status change of a report and who made it."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where the action was taken when not in a chat: "dasbor" (the desk, bot/web/desk).
    via: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("ix_report_events_created_at", "created_at"),)


class Conversation(Base):
    """Where one user stands in a conversation with the bot in one chat, and their draft."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(32), default="idle")
    draft: Mapped[Draft] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "chat_id", "user_id"),)
    __mapper_args__ = {"version_id_col": version}


class Outbox(Base):
    """A message that must not be lost, written with the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    bot: Mapped[str] = mapped_column(String(32), default=DEFAULT_BOT)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL")
    )
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    status_at: Mapped[datetime | None]
    # When retention emptied the message's text (``storage.retention``); the row stays for
    # its delivery bookkeeping.
    purged_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_purged_at_created_at", "purged_at", "created_at"),
        # One chat's rows (storage.boards.chat_load, for every group alert: waiting, and sent in
        # the window): without it each alert read the whole table (bench/purge.py: p50 0.5 s at
        # 1,000,000 rows). chat_id first, so the dispatcher's claim (no chat) keeps its index.
        Index("ix_outbox_chat_status", "chat_id", "channel", "status", "sent_at"),
        Index("ix_outbox_report_id", "report_id"),
        # One person's rows: erasing them (storage.personal) deletes their messages and clears
        # the reference, and deleting the contact checks the key; without it each of the three
        # read the whole table (bench/erasure.py: 0.4 s of 1.8 s at 1,000,000 rows, SQLite).
        Index("ix_outbox_contact_id", "contact_id"),
        Index("ix_outbox_broadcast_id", "broadcast_id"),
        Index("ix_outbox_external_id", "external_id"),
    )


class Broadcast(Base):
    """An announcement from a coordinator to an area and its sub-areas."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    audience: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    media_ref: Mapped[str | None] = mapped_column(Text)  # the photo: a media store ref
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_broadcasts_media_ref", "media_ref"),)


class Reminder(Base):
    """A scheduled health or patrol reminder, in its area's time zone."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    schedule: Mapped[str] = mapped_column(String(120))
    cron: Mapped[str] = mapped_column(String(120))
    target: Mapped[str] = mapped_column(String(16), default="groups")
    # A health template's key (``template.<key>`` in the catalogs): the text is rendered in each
    # recipient's language at send time, so deployment overrides apply without editing the row.
    template: Mapped[str | None] = mapped_column(String(32))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_fired_at: Mapped[datetime | None]


class PatrolTeam(Base):
    """A ronda (siskamling) team of an area."""

    __tablename__ = "patrol_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PatrolMember(Base):
    """A member of a patrol team, optionally linked to a contact who uses the bot."""

    __tablename__ = "patrol_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(
        ForeignKey("patrol_teams.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))


class PatrolRota(Base):
    """How an area's teams take turns, and when tonight's team is announced."""

    __tablename__ = "patrol_rotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[str] = mapped_column(String(16), default="daily")
    start_date: Mapped[str] = mapped_column(String(10))
    announce_time: Mapped[str] = mapped_column(String(5), default="21:00")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)


class PatrolShift(Base):
    """One night's duty of one team, with confirmations ("Hadir") and the outcome ("Aman")."""

    __tablename__ = "patrol_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    team_id: Mapped[int] = mapped_column(ForeignKey("patrol_teams.id", ondelete="CASCADE"))
    shift_date: Mapped[str] = mapped_column(String(10))
    confirmations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("area_id", "shift_date"),)


class PatrolConfirmation(Base):
    """One member's answer for one shift: "Hadir" (present) and, after the shift, "Aman" (all
    safe) or an incident report."""

    __tablename__ = "patrol_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("patrol_shifts.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("patrol_members.id", ondelete="CASCADE"))
    confirmed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("shift_id", "member_id"),)


class ProcessedInbound(Base):
    """Inbound ids already handled (Telegram update_id, Twilio MessageSid): retries are dropped."""

    __tablename__ = "processed_inbound"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SendSlot(Base):
    """A send counted against a deployment-wide rate limit (PostgreSQL, several workers).

    ``until`` is when the slot frees: far ahead while the send is in flight, then its completion
    time plus the limit's period. A scope is a bot ("tg:<bot id>") or a bot's group chat.
    """

    __tablename__ = "send_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_send_slots_scope_until", "scope", "until"),)


class WhatsAppContent(Base):
    """A Twilio Content API resource made for buttons (``twilio/quick-reply``,
    ``twilio/list-picker``), found by the hash of the body it was created from, so every worker
    and every restart sends the same one. The message text is a variable of the content: one
    resource serves every message with the same options. A body Twilio refused keeps the reason
    instead of a SID; ``retry_at`` says when it may be tried again (None: never, e.g. a 400)."""

    __tablename__ = "whatsapp_contents"

    body_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    content_sid: Mapped[str | None] = mapped_column(String(34))
    refused: Mapped[str | None] = mapped_column(String(255))
    retry_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Open311Key(Base):
    """An Open311 API key of an area (``ktn-bot open311 key``): only its SHA-256 is kept.

    It files reports in its area and the areas below it, and reads theirs. Revoked keys stay
    (``revoked_at``) so the reports they filed keep their source.
    """

    __tablename__ = "open311_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Open311Request(Base):
    """A report filed through the Open311 API: the key that filed it, what the submitting
    system said about the person (never shown for an anonymous report, never in public reads),
    and the fingerprint that makes a retried POST answer with the same report.

    ``phone`` (E.164) lets the person follow the report on a chat channel: when a contact with
    that number, who consented, writes to the bot, it becomes a follower (``linked_contact_id``).
    """

    __tablename__ = "open311_requests"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[int | None] = mapped_column(ForeignKey("open311_keys.id", ondelete="SET NULL"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    device_id: Mapped[str | None] = mapped_column(String(128))
    account_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    linked_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_open311_requests_fingerprint_created", "fingerprint", "created_at"),
        Index("ix_open311_requests_phone", "phone"),
    )


class MediaBlob(Base):
    """A file in the media store (``bot.media``), named by the SHA-256 of its bytes.

    One row per stored file, whoever sent it and however often: two reports with the same photo
    share it. ``holds`` counts downloads whose message is still being handled (the file must
    stay until the core has kept or dropped it); a file no report, broadcast or draft refers to
    is deleted once its holds are released, or by the leader's sweep after a grace period
    (``storage.media``).
    """

    __tablename__ = "media_blobs"

    ref: Mapped[str] = mapped_column(String(80), primary_key=True)  # "sha256:<64 hex>"
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(100))
    holds: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    touched_at: Mapped[datetime] = mapped_column(default=utcnow)  # last stored again or held
    # A file made for one person about themselves (their /dataku copy, sent from a link):
    # erasing them deletes it at once instead of after the grace period (``storage.personal``).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_media_blobs_touched_at", "touched_at"),)


class MediaFileId(Base):
    """A channel's own id for a stored file, per bot and kind: Telegram's ``file_id`` of an
    upload (or of the resident's message) is sent again instead of the bytes."""

    __tablename__ = "media_file_ids"

    ref: Mapped[str] = mapped_column(
        ForeignKey("media_blobs.ref", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    bot: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    file_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeskLogin(Base):
    """A single-use sign-in link to the desk (``/dasbor`` in a private chat): only the
    SHA-256 of its token is kept; it expires after ``[web] login_minutes``."""

    __tablename__ = "desk_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_desk_logins_contact_id", "contact_id"),)


class DeskSession(Base):
    """A browser signed in to the desk: the SHA-256 of its cookie, its CSRF token, when it
    was last used (idle timeout) and when it ended (logout, or "log out everywhere")."""

    __tablename__ = "desk_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_desk_sessions_contact_id", "contact_id"),)


class GroupBoard(Base):
    """A group's live report board (``handlers.board``): one message edited in place while the
    group's queue is too long for one alert per report. ``message_row`` is the outbox row that
    sends it; ``edit_row`` the newest edit not yet sent (new reports update that row instead of
    queueing another); edits go out no sooner than ``next_edit_at``. Closed when the queue has
    cleared (``closed_at``); at most one open board per group chat."""

    __tablename__ = "group_boards"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    bot: Mapped[str] = mapped_column(String(32), default=DEFAULT_BOT)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    lang: Mapped[str] = mapped_column(String(8))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    message_row: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    edit_row: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    next_edit_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_group_boards_chat", "channel", "chat_id", "closed_at"),)


class BoardReport(Base):
    """A report shown on a board instead of its own alert in that group."""

    __tablename__ = "board_reports"

    board_id: Mapped[int] = mapped_column(
        ForeignKey("group_boards.id", ondelete="CASCADE"), primary_key=True
    )
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_board_reports_report_id", "report_id"),)


class Problem(Base):
    """A recurring problem behind several reports of one area, worked through SARA (issue 20).

    ``stage`` only moves forward one step at a time (``storage.problems.move_stage``, which
    records a ``problem_events`` row). ``response_started_at`` is when it entered the response:
    the assessment compares equal periods before and after it. A problem merged into another is
    closed with ``merged_into_id`` set; its reports, notes and actions moved there.
    """

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    pillar: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(160))
    stage: Mapped[str] = mapped_column(String(16), default="scanning")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    response_started_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closing_note: Mapped[str | None] = mapped_column(Text)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("problems.id", ondelete="SET NULL")
    )

    __table_args__ = (Index("ix_problems_area_stage", "area_id", "stage"),)


class ProblemReport(Base):
    """A report linked to a problem. A report belongs to at most one problem (``report_id`` is
    the key): adding it to another moves it, and suggestions skip reports already linked."""

    __tablename__ = "problem_reports"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_problem_reports_problem_id", "problem_id"),)


class ProblemNote(Base):
    """An analysis note: the victims, the offenders, the place (the triangle), or a cause."""

    __tablename__ = "problem_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(
        ForeignKey("problems.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProblemAction(Base):
    """A response action with an owner (an officer or coordinator of the area) and a due time.

    ``remind_at`` is when the owner is reminded; ``reminded_at`` is set by one conditional UPDATE
    in the transaction that queues the reminder (outbox dedupe key too), so two workers or a
    restart remind exactly once."""

    __tablename__ = "problem_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(
        ForeignKey("problems.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    due_at: Mapped[datetime]
    remind_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_problem_actions_remind", "done_at", "reminded_at", "remind_at"),
        Index("ix_problem_actions_owner_id", "owner_id"),
    )


class ProblemEvent(Base):
    """A problem's trail: made, stage moved, reports linked/unlinked, merged, notes, actions."""

    __tablename__ = "problem_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(
        ForeignKey("problems.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str | None] = mapped_column(String(16))  # "dasbor" when not in a chat
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProblemSuggestion(Base):
    """A problem ktn-bot proposes: at least N reports of one category in one area within D days.

    ``fingerprint`` is the SHA-256 of the sorted report ids: a set of reports is proposed at most
    once (unique per area and category), so a dismissed set never comes back; a new report makes
    a new set. At most one suggestion per area and category is ``proposed`` at a time: a larger
    set replaces the reports of the one still waiting."""

    __tablename__ = "problem_suggestions"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    report_ids: Mapped[list[int]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="proposed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("area_id", "category", "fingerprint"),
        Index("ix_problem_suggestions_area_state", "area_id", "state"),
    )


class AccessLog(Base):
    """A privileged read of personal data (a report's page on the desk, an export, ``/status``
    of someone else's ticket by staff): who read what kind of thing and when, never the data.
    ``subject`` names the report (its ticket) or the filter of an export."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))
    via: Mapped[str] = mapped_column(String(16))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    subject: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_access_log_at", "at"),
        Index("ix_access_log_actor_id", "actor_id"),
    )


class ErasedContact(Base):
    """Someone who asked for their data to be erased (``/hapusdata``), remembered only as the
    HMAC-SHA256 of their channel and chat id under a secret key (``KTN_PDP_HASH_SECRET``):
    never the id or the phone. A new contact whose hash is here starts opted out of
    announcements (``storage.erasure``), so erasing is not undone by the next broadcast."""

    __tablename__ = "erased_contacts"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
