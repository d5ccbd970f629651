"""The neutral vocabulary between channel adapters and the conversation core.

An adapter turns a Telegram update or a Twilio form into an ``Inbound``; the core answers with
``Reply`` objects. Options are data: Telegram draws them as inline buttons, WhatsApp as quick
replies or a list (or numbered lines, "1. Keamanan", where those cannot go). Nothing here knows
about a channel's SDK.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Required, TypedDict

from handlers.commands import Command
from handlers.states import State
from storage.drafts import STORE_PREFIX, MediaJson
from storage.types import Channel

__all__ = [
    "BroadcastQueued",
    "Channel",
    "ChatKind",
    "Document",
    "ExportSent",
    "Filed",
    "Inbound",
    "InvalidInbound",
    "Location",
    "Media",
    "MediaKind",
    "MediaProblem",
    "Option",
    "Outcome",
    "PatrolAnswered",
    "Recorded",
    "Reply",
    "StaffActed",
]


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


class MediaKind(StrEnum):
    PHOTO = "photo"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    OTHER = "other"


class MediaProblem(StrEnum):
    """Why a file the user sent was not taken (nothing of it is stored): the channel's
    ``prepare`` step decides, the core answers politely."""

    TOO_LARGE = "too_large"  # over the channel's or the deployment's limit for its kind
    NOT_ACCEPTED = "not_accepted"  # a kind the deployment does not take
    UNAVAILABLE = "unavailable"  # could not be downloaded (the user may send it again)


@dataclass(frozen=True, slots=True)
class Location:
    """A GPS pin, with the place's name/address when the channel gives one."""

    latitude: float
    longitude: float
    address: str | None = None
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "lat": self.latitude,
            "lon": self.longitude,
            "address": self.address,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Location:
        return cls(data["lat"], data["lon"], data.get("address"), data.get("label"))


@dataclass(frozen=True, slots=True)
class Media:
    """A file the user sent or the bot sends.

    ``ref`` is, once the channel's ``prepare`` step has downloaded it, the media store's
    ``sha256:<hex>`` (any channel can send it); before that, what the channel gave (a Telegram
    file_id, a Twilio media URL). ``size`` in bytes when known. ``problem``: the file was not
    taken (``limit``: the largest size accepted for its kind, for the answer). ``origin``: the
    channel's own copy where it can be deleted (a Twilio media URL), kept so that erasing the
    sender deletes it there too.
    """

    kind: MediaKind
    ref: str
    content_type: str | None = None
    size: int | None = None
    problem: MediaProblem | None = None
    limit: int | None = None
    origin: str | None = None

    @property
    def stored(self) -> bool:
        """The file is in ktn-bot's media store."""
        return self.problem is None and self.ref.startswith(STORE_PREFIX)

    def to_json(self) -> MediaJson:
        data: MediaJson = {
            "kind": self.kind.value,
            "ref": self.ref,
            "content_type": self.content_type,
        }
        if self.size is not None:
            data["size"] = self.size
        if self.origin is not None:
            data["origin"] = self.origin
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Media:
        size = data.get("size")
        origin = data.get("origin")
        return cls(
            MediaKind(data["kind"]),
            data["ref"],
            data.get("content_type"),
            size if type(size) is int else None,
            origin=origin if isinstance(origin, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Document:
    """A file the bot makes and sends as a document (an export): its name, bytes and type."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "data": base64.b64encode(self.data).decode("ascii"),
            "content_type": self.content_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        return cls(data["filename"], base64.b64decode(data["data"]), data["content_type"])


@dataclass(frozen=True, slots=True)
class Option:
    """A choice offered to the user; ``data`` comes back as ``Inbound.button`` (<= 64 bytes)."""

    label: str
    data: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= 64:
            raise ValueError(f"option data must be 1-64 bytes: {self.data!r}")


class InvalidInbound(ValueError):
    """A message an adapter built from a malformed update or form: never given to the core.

    Adapters refuse it at their edge (a webhook answers 400, polling logs one line with the
    update's id); the reason names the field, never its content."""


# Bounds far above what either channel sends (Telegram: text 4096, caption 1024, names 64 + 64,
# callback data 64 bytes; Twilio: Body 1600, 10 media, ButtonPayload 200): anything larger is
# forged or malformed, and the core must not carry it into the database or a log.
INBOUND_TEXT_LIMIT = 16_384
INBOUND_NAME_LIMIT = 256
INBOUND_ID_LIMIT = 128
INBOUND_BUTTON_LIMIT = 256
INBOUND_MEDIA_LIMIT = 10
INBOUND_PLACE_LIMIT = 1_024
_INT64 = 2**63


def _is_id(value: object) -> bool:
    """A chat or user id: a real int (not a bool, not a numeric string) within BigInteger."""
    return type(value) is int and -_INT64 <= value < _INT64


def _too_long(value: object, limit: int) -> bool:
    return value is not None and (not isinstance(value, str) or len(value) > limit)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a user, whatever the channel.

    Constructing one validates it (``InvalidInbound``): ids are 64-bit integers, strings are
    strings of bounded size, a location is a finite point on Earth. So the core never sees a
    malformed message, whichever adapter made it.
    """

    channel: Channel
    chat_id: int
    chat_kind: ChatKind
    user_id: int
    display_name: str = ""
    text: str | None = None
    button: str | None = None
    location: Location | None = None
    media: tuple[Media, ...] = ()
    message_id: str | None = None
    phone: str | None = None
    language_code: str | None = None
    received_at: datetime | None = None
    chat_title: str | None = None

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise InvalidInbound(problem)

    def problem(self) -> str | None:
        """What is wrong with this message (a field name and the rule), or None.

        The fields are read as plain objects: an adapter's bug or a forged update can put any
        value in them, whatever the annotations say."""
        value: dict[str, object] = {name: getattr(self, name) for name in self.__slots__}
        kinds = (("channel", Channel), ("chat_kind", ChatKind), ("media", tuple))
        for name, kind in kinds:
            if not isinstance(value[name], kind):
                return f"{name} is not a {kind.__name__}"
        for name in ("chat_id", "user_id"):
            if not _is_id(value[name]):
                return f"{name} is not a 64-bit integer"
        for name, limit in (
            ("display_name", INBOUND_NAME_LIMIT),
            ("text", INBOUND_TEXT_LIMIT),
            ("button", INBOUND_BUTTON_LIMIT),
            ("message_id", INBOUND_ID_LIMIT),
            ("phone", INBOUND_ID_LIMIT),
            ("language_code", INBOUND_ID_LIMIT),
            ("chat_title", INBOUND_NAME_LIMIT),
        ):
            if _too_long(value[name], limit):
                return f"{name} is not a string of at most {limit} characters"
        media: tuple[object, ...] = self.media
        if len(media) > INBOUND_MEDIA_LIMIT:
            return f"media has more than {INBOUND_MEDIA_LIMIT} items"
        for item in media:
            if not isinstance(item, Media) or _too_long(item.ref, INBOUND_PLACE_LIMIT):
                return "a media item is malformed"
        if value["location"] is not None and not _is_place(value["location"]):
            return "location is not a finite point on Earth"
        if value["received_at"] is not None and not isinstance(value["received_at"], datetime):
            return "received_at is not a datetime"
        return None


def _is_place(location: object) -> bool:
    if not isinstance(location, Location):
        return False
    lat, lon = location.latitude, location.longitude
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
        return False
    return (
        math.isfinite(lat)
        and math.isfinite(lon)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
        and not _too_long(location.address, INBOUND_PLACE_LIMIT)
        and not _too_long(location.label, INBOUND_PLACE_LIMIT)
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """Something to say in the chat the inbound message came from (or, in the outbox, another)."""

    text: str
    options: tuple[Option, ...] = ()
    location: Location | None = None
    media: Media | None = None
    ask_location: bool = False
    location_label: str | None = None
    document: Document | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "text": self.text,
            "options": [[o.label, o.data] for o in self.options],
            "location": self.location.to_json() if self.location else None,
            "media": self.media.to_json() if self.media else None,
            "ask_location": self.ask_location,
            "location_label": self.location_label,
        }
        if self.document is not None:
            data["document"] = self.document.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data["text"],
            options=tuple(Option(label, value) for label, value in data.get("options") or ()),
            location=Location.from_json(data["location"]) if data.get("location") else None,
            media=Media.from_json(data["media"]) if data.get("media") else None,
            ask_location=bool(data.get("ask_location")),
            location_label=data.get("location_label"),
            document=Document.from_json(data["document"]) if data.get("document") else None,
        )


class Filed(TypedDict):
    """The report a message filed."""

    ticket: str
    report_id: int


class StaffActed(TypedDict):
    """An officer's or coordinator's claim, resolution or rejection of a report."""

    action: str  # handlers.actions.Action: claim, resolve, reject
    report_id: int
    done: bool  # the report changed (False: refused, or nothing to change)


class PatrolAnswered(TypedDict, total=False):
    """A patrol member's answer to tonight's shift: Hadir (``present``: it was news) or, after
    it, Aman / Lapor kejadian (``outcome``: the one recorded, "aman" or "incident")."""

    shift_id: Required[int]
    present: bool
    outcome: str | None


class BroadcastQueued(TypedDict):
    """A broadcast written with one outbox row per recipient."""

    id: int
    recipients: int


class ExportSent(TypedDict):
    """Reports sent in the chat as a document."""

    format: str  # csv, geojson, or problems (the problems' CSV: then "reports" counts problems)
    reports: int


@dataclass(slots=True)
class Recorded:
    """What a message recorded, for callers and tests. Nothing here is acted upon: what must
    follow the commit is ``Outcome``'s effects."""

    state: State | None = None  # the private conversation's state afterwards
    filed: Filed | None = None
    followed: int | None = None  # the report the sender now follows instead of filing anew
    staff: StaffActed | None = None
    registered: str | None = None  # the role an invite code gave (storage.types.Role)
    erased: bool = False  # the sender's personal data was erased
    export: ExportSent | None = None
    broadcast: BroadcastQueued | None = None
    patrol: PatrolAnswered | None = None
    reminder_id: int | None = None  # the reminder added, paused, resumed or deleted
    command: Command | None = None  # the command a group was answered
    linked_area_id: int | None = None  # the area whose alerts a group now receives
    # The reporter's answer to a resolved report: {"report_id": …, "answer": "confirmed" or
    # "reopened"} (handlers.lifecycle).
    lifecycle: dict[str, int | str] | None = None


@dataclass(slots=True)
class Outcome:
    """What the core decided: replies for this chat and a short notice for a pressed button;
    the effects that must follow the commit (``outbox_ids``: rows to send, so wake the
    dispatcher; ``schedules_changed``: a reminder or patrol rotation changed, so the scheduler
    syncs at once; ``media_kept``: the message's stored files the core kept, in a draft or a
    record, so the seam knows the rest were dropped; ``media_dropped``: stored files the
    conversation's draft held before and holds no more (cancelled, expired, erased, or filed
    into a record): the seam deletes those nothing else refers to); and what was recorded, for
    callers and tests."""

    replies: list[Reply] = field(default_factory=list)
    notice: str | None = None
    recorded: Recorded = field(default_factory=Recorded)
    outbox_ids: list[int] = field(default_factory=list)
    schedules_changed: bool = False
    media_kept: list[str] = field(default_factory=list)
    media_dropped: list[str] = field(default_factory=list)
    # The replies carry personal data not kept once sent (/dataku's copy, /hapusdata's answer):
    # a channel that queues its replies marks their rows to be deleted when sent.
    forget_replies: bool = False
    duplicate: bool = False
    failed: bool = False  # nothing was recorded; the replies only apologise
