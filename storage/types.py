"""Column types and value enums shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores it naive, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


DEFAULT_BOT = "default"  # the key of the Telegram bot whose token is KTN_TELEGRAM_TOKEN; the only
# key of channels without several bots (WhatsApp). Defined here, where every layer may import it.


class Channel(StrEnum):
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


class AreaLevel(StrEnum):
    PROVINSI = "provinsi"
    KABUPATEN = "kabupaten"
    KOTA = "kota"
    KECAMATAN = "kecamatan"
    KELURAHAN = "kelurahan"
    DESA = "desa"
    RW = "rw"
    RT = "rt"


class Role(StrEnum):
    RESIDENT = "resident"
    OFFICER = "officer"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.RESIDENT


class ReportStatus(StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # merged into another report (``Report.duplicate_of_id``)
    REOPENED = "reopened"  # the reporter said "Belum selesai", or staff reopened it (desk)

    @property
    def is_open(self) -> bool:
        return self in (ReportStatus.NEW, ReportStatus.CLAIMED, ReportStatus.REOPENED)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    FOLDED = "folded"  # a group alert not sent: its report went onto the group's board
    UNDELIVERED = "undelivered"
    NEEDS_TEMPLATE = "needs_template"


class OutboxKind(StrEnum):
    REPLY = "reply"  # the answer to a message, queued (WhatsApp) or handed over (Telegram)
    ALERT = "alert"
    ALERT_EDIT = "alert_edit"
    STATUS = "status"
    ESCALATION = "escalation"
    BROADCAST = "broadcast"
    REMINDER = "reminder"
    PATROL = "patrol"
    RECAP = "recap"
    NOTICE = "notice"
    BOARD = "board"  # a group's live report board in a surge (handlers.board)
    PROBLEM = "problem"  # a problem's news: an action's reminder to its owner, news to reporters
    # Not a message: a file the channel holds, deleted there (an erased sender's Twilio media,
    # ``storage.erasure``); ``payload["url"]`` names it. Retried like a send.
    MEDIA_DELETE = "media_delete"


class ProblemStage(StrEnum):
    """A problem's SARA stage (issue 20). It only moves forward, one step at a time
    (``storage.problems.move_stage``): scanning → analysis → response → assessment → closed."""

    SCANNING = "scanning"
    ANALYSIS = "analysis"
    RESPONSE = "response"
    ASSESSMENT = "assessment"
    CLOSED = "closed"

    @property
    def next(self) -> ProblemStage | None:
        """The one stage this one may move to (None: closed is the last)."""
        order = list(ProblemStage)
        at = order.index(self)
        return order[at + 1] if at + 1 < len(order) else None

    @property
    def is_open(self) -> bool:
        return self is not ProblemStage.CLOSED


class NoteKind(StrEnum):
    """The problem-analysis triangle (victim, offender, place) and the causes behind it."""

    VICTIM = "victim"
    OFFENDER = "offender"
    PLACE = "place"
    CAUSE = "cause"


class SuggestionState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"  # a problem was made of its reports (``ProblemSuggestion.problem_id``)
    DISMISSED = "dismissed"  # never proposed again for the same set of reports
