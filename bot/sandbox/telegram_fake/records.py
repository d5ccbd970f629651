"""Plain records of the fake's state: bots, users, chats, messages, files, events and errors."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
ChatKind = Literal["private", "group", "supergroup"]
MessageKind = Literal["text", "photo", "location", "document", "voice"]

_file_counter = itertools.count(1)


class ApiError(Exception):
    """A Bot API error, answered as ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        """The JSON body Telegram would answer."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str, parameters: JSON | None = None) -> ApiError:
    """A 400 with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {message}", parameters)


def forbidden(message: str) -> ApiError:
    """A 403 with Telegram's "Forbidden: " prefix."""
    return ApiError(403, f"Forbidden: {message}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 flood-control answer."""
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


@dataclass
class User:
    """A simulated Telegram user."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "id"

    def to_api(self) -> JSON:
        """The Bot API ``User`` object."""
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class Chat:
    """A private chat (id = user id), a group or a supergroup."""

    id: int
    type: ChatKind
    title: str | None = None
    user: User | None = None
    members: set[int] = field(default_factory=set)
    bot_ids: set[int] = field(default_factory=set)
    kicked_bot_ids: set[int] = field(default_factory=set)
    migrated_to: int | None = None

    def to_api(self) -> JSON:
        """The Bot API ``Chat`` object."""
        if self.user is not None:
            data: JSON = {"id": self.id, "type": "private", "first_name": self.user.first_name}
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
            return data
        return {"id": self.id, "type": self.type, "title": self.title or ""}

    def full_info(self) -> JSON:
        """The Bot API ``ChatFullInfo`` object (getChat)."""
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {
            **self.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }


@dataclass
class Pending:
    """An update waiting in a bot's queue; ``delivered`` once getUpdates returned it."""

    update: JSON
    delivered: bool = False

    @property
    def update_id(self) -> int:
        """The update's id."""
        return int(self.update["update_id"])


@dataclass
class Webhook:
    """A bot's webhook registration and its delivery statistics."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    delivered: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Edit:
    """One earlier version of a bot message, kept when the message was edited."""

    text: str | None
    caption: str | None
    reply_markup: JSON | None
    at: float


@dataclass
class SentMessage:
    """What a bot sent to a chat, as the user would see it (current content plus edit history)."""

    bot: str
    chat_id: int
    message_id: int
    kind: MessageKind
    text: str | None
    caption: str | None
    reply_markup: JSON | None
    parse_mode: str | None
    received_at: float
    event_id: int
    raw: JSON
    location: tuple[float, float] | None = None
    file_id: str | None = None
    filename: str | None = None
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False
    source: str | None = None

    @property
    def content(self) -> str:
        """The text or the caption (empty when there is neither)."""
        return self.text or self.caption or ""

    def buttons(self) -> list[JSON]:
        """The inline keyboard buttons, row by row flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def button_data(self) -> list[str]:
        """The callback_data of every inline button."""
        return [str(b["callback_data"]) for b in self.buttons() if "callback_data" in b]

    def to_json(self) -> JSON:
        """A JSON-able summary (for /_sim/ and error messages)."""
        return {
            "bot": self.bot,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "text": self.text,
            "caption": self.caption,
            "reply_markup": self.reply_markup,
            "parse_mode": self.parse_mode,
            "location": list(self.location) if self.location else None,
            "file_id": self.file_id,
            "filename": self.filename,
            "edits": [e.__dict__ for e in self.edits],
            "deleted": self.deleted,
            "source": self.source,
            "event_id": self.event_id,
        }

    def describe(self) -> str:
        """A one-line description for timeout messages."""
        text = self.content.replace("\n", " ")
        short = text if len(text) <= 80 else text[:77] + "..."
        flags = " (deleted)" if self.deleted else ""
        return f"#{self.message_id} {self.kind} {short!r}{flags}"


@dataclass
class CallbackAnswer:
    """A bot's answerCallbackQuery."""

    bot: str
    callback_query_id: str
    user_id: int
    chat_id: int | None
    message_id: int | None
    text: str | None
    show_alert: bool
    url: str | None
    event_id: int
    at: float


@dataclass
class CallbackQueryState:
    """A callback query sent to the bot, waiting for its answer."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    created: float
    answered: bool = False


@dataclass
class StoredFile:
    """A file known to the fake (uploaded by a bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str | None = None
    filename: str | None = None

    @classmethod
    def create(
        cls, folder: str, data: bytes, suffix: str, mime: str | None, filename: str | None
    ) -> StoredFile:
        """A new file with fresh ids, stored under ``folder/file_N.suffix``."""
        number = next(_file_counter)
        return cls(
            file_id=f"AgACAgUAAx{number:06d}{secrets.token_hex(8)}",
            file_unique_id=f"AQAD{number:06d}{secrets.token_hex(3)}",
            file_path=f"{folder}/file_{number}.{suffix}",
            data=data,
            mime_type=mime,
            filename=filename,
        )

    def to_api(self) -> JSON:
        """The Bot API ``File`` object (getFile)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class Event:
    """Something observable happened; ids increase monotonically from 1."""

    id: int
    type: str
    bot: str
    chat_id: int | None
    data: JSON
    at: float = field(default_factory=time.time)

    def to_json(self) -> JSON:
        """The JSON form served by ``GET /_sim/events``."""
        return {
            "id": self.id,
            "type": self.type,
            "bot": self.bot,
            "chat_id": self.chat_id,
            "at": self.at,
            "data": self.data,
        }


@dataclass
class FakeBot:
    """One bot token known to the fake, with its own updates, messages and state."""

    token: str
    id: int
    username: str
    first_name: str
    next_update_id: int = 1
    pending: list[Pending] = field(default_factory=list)
    history: dict[int, JSON] = field(default_factory=dict)
    poll_generation: int = 0
    webhook: Webhook | None = None
    started: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    sent: dict[int, list[SentMessage]] = field(default_factory=dict)
    sent_by_id: dict[tuple[int, int], SentMessage] = field(default_factory=dict)
    user_messages: dict[tuple[int, int], JSON] = field(default_factory=dict)
    message_counters: dict[int, Iterator[int]] = field(default_factory=dict)
    callback_queries: dict[str, CallbackQueryState] = field(default_factory=dict)
    sent_count: int = 0

    def to_api(self) -> JSON:
        """The bot's ``User`` object (getMe, ``from`` of its messages)."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def next_message_id(self, chat_id: int) -> int:
        """The next message id in a chat (shared by the user's and the bot's messages)."""
        counter = self.message_counters.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def take_update_id(self) -> int:
        """A fresh update id."""
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    def find_sent(self, chat_id: int, message_id: int) -> SentMessage | None:
        """The bot's message with that id in that chat, if any."""
        return self.sent_by_id.get((chat_id, message_id))

    def add_sent(self, record: SentMessage) -> None:
        """Keep a message the bot sent."""
        self.sent.setdefault(record.chat_id, []).append(record)
        self.sent_by_id[(record.chat_id, record.message_id)] = record
        self.sent_count += 1


@dataclass
class Upload:
    """A file uploaded in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes
