"""The neutral vocabulary between channel adapters and the conversation core.

An adapter turns a Telegram update or a Twilio form into an ``Inbound``; the core answers with
``Reply`` objects. Options are data: Telegram draws them as inline buttons, WhatsApp as numbered
lines ("1. Keamanan"). Nothing here knows about a channel's SDK.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from storage.types import Channel

__all__ = [
    "Channel",
    "ChatKind",
    "Document",
    "Inbound",
    "Location",
    "Media",
    "MediaKind",
    "Option",
    "Outcome",
    "Reply",
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
    """A file the user sent or the bot sends: a Telegram file_id, a Twilio media URL, a path."""

    kind: MediaKind
    ref: str
    content_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "ref": self.ref, "content_type": self.content_type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Media:
        return cls(MediaKind(data["kind"]), data["ref"], data.get("content_type"))


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


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a user, whatever the channel."""

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


@dataclass(slots=True)
class Outcome:
    """What the core decided: replies for this chat, a short notice for a pressed button, and
    what was recorded (ticket ids, outbox row ids) for callers and tests."""

    replies: list[Reply] = field(default_factory=list)
    notice: str | None = None
    recorded: dict[str, Any] = field(default_factory=dict)
    outbox_ids: list[int] = field(default_factory=list)
    duplicate: bool = False
    failed: bool = False  # nothing was recorded; the replies only apologise
