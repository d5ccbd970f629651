"""The fake's state and its Python API: simulate users, observe the bot, await what it does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Literal, TypeVar

import httpx
from starlette.applications import Starlette

from bot.sandbox.telegram_fake.limits import (
    Fault,
    FaultKind,
    Faults,
    FloodControl,
    FloodLimits,
    check_caption,
)
from bot.sandbox.telegram_fake.records import (
    JSON,
    ApiError,
    CallbackAnswer,
    CallbackQueryState,
    Chat,
    Edit,
    Event,
    FakeBot,
    MessageKind,
    Pending,
    SentMessage,
    StoredFile,
    User,
    Webhook,
    bad_request,
    forbidden,
)
from bot.web.serving import serve_asgi

T = TypeVar("T")
BotRef = str | FakeBot | None

DEFAULT_TOKEN = "7000000001:AAFakeTelegramTokenForKtnTests0000000"  # noqa: S105 - a fake's token
COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,64})?")
PLACEHOLDER_JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
PLACEHOLDER_OGG = b"OggS\x00fake-voice"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def now_ts() -> int:
    """Unix time, as Telegram's ``date`` fields."""
    return int(time.time())


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG (1280x960 when unknown)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    i = 2
    while data.startswith(b"\xff\xd8") and i + 9 < len(data):
        if data[i] != 0xFF:
            break
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = (
                int.from_bytes(data[i + 5 : i + 7], "big"),
                int.from_bytes(data[i + 7 : i + 9], "big"),
            )
            return w, h
        i += 2 + length
    return 1280, 960


def inline_only(markup: JSON | None) -> JSON | None:
    """The markup if it is an inline keyboard (the only kind a Message carries back)."""
    return markup if markup and "inline_keyboard" in markup else None


class TelegramFake:
    """A local Telegram: serves the Bot API over HTTP and simulates users, chats and faults."""

    def __init__(
        self,
        token: str | None = DEFAULT_TOKEN,
        *,
        username: str = "ktn_test_bot",
        first_name: str = "KTN Test Bot",
        flood: bool = True,
        flood_limits: FloodLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        hang_seconds: float = 30.0,
        webhook_retries: int = 3,
        webhook_timeout: float = 10.0,
        callback_query_ttl: float = 15.0,
    ) -> None:
        from bot.sandbox.telegram_fake.http import (
            build_app,  # import cycle: http needs the type only
        )

        self.bots: dict[str, FakeBot] = {}
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_sizes: dict[str, list[JSON]] = {}
        self.events: list[Event] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.call_counts: Counter[str] = Counter()
        self.count_429 = 0
        self.clock = clock
        self.flood = FloodControl(flood_limits or FloodLimits(), clock)
        self.flood.enabled = flood
        self.faults = Faults()
        self.hang_seconds = hang_seconds
        self.webhook_retries = webhook_retries
        self.webhook_timeout = webhook_timeout
        self.callback_query_ttl = callback_query_ttl
        self.url: str | None = None
        self.closed = False
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._last_action: dict[tuple[str, int], int] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._cm: contextlib.AbstractAsyncContextManager[str] | None = None
        self.app: Starlette = build_app(self)
        if token:
            self.add_bot(token, username=username, first_name=first_name)

    # ----------------------------------------------------------------- serving

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve the fake on host:port (0 = any free port) while the block runs; yields its URL."""
        self.closed = False
        self._closing = asyncio.Event()
        async with serve_asgi(self.app, host, port) as url:
            self.url = url
            try:
                yield url
            finally:
                await self.aclose()

    async def __aenter__(self) -> TelegramFake:
        """Serve on 127.0.0.1 at a free port (see ``url``, ``bot_api_url``, ``file_api_url``)."""
        self._cm = self.serve()
        await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await cm.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Wake every waiting request, stop webhook delivery and close the HTTP client."""
        self.closed = True
        self._closing.set()
        self.notify()
        workers = list(self._workers.values())
        self._workers.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _require_url(self) -> str:
        """The base URL, or a clear error when not serving."""
        if self.url is None:
            raise RuntimeError("the fake is not serving: use `async with fake:` or fake.serve()")
        return self.url

    @property
    def bot_api_url(self) -> str:
        """``base_url`` for PTB (the token is appended): ``http://127.0.0.1:PORT/bot``."""
        return f"{self._require_url()}/bot"

    @property
    def file_api_url(self) -> str:
        """``base_file_url`` for PTB: ``http://127.0.0.1:PORT/file/bot``."""
        return f"{self._require_url()}/file/bot"

    # ------------------------------------------------------- change notification

    def notify(self) -> None:
        """Wake everything waiting for a change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait until the next change (or the timeout)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_closed(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the fake closes (or the timeout)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout)

    def emit(self, kind: str, bot: FakeBot, chat_id: int | None, data: JSON) -> Event:
        """Append an event and wake the waiters."""
        event = Event(len(self.events) + 1, kind, bot.username, chat_id, data)
        self.events.append(event)
        self.notify()
        return event

    def mark(self) -> int:
        """The id of the latest event (pass it as ``since`` to the wait helpers)."""
        return len(self.events)

    # -------------------------------------------------------------------- bots

    def add_bot(
        self,
        token: str,
        *,
        username: str | None = None,
        first_name: str | None = None,
        bot_id: int | None = None,
    ) -> FakeBot:
        """Register a bot token; its user id defaults to the number before the colon."""
        number = len(self.bots) + 1
        head = token.split(":", 1)[0]
        if bot_id is None:
            bot_id = int(head) if head.isdigit() else 7_000_000_000 + number
        bot = FakeBot(
            token=token,
            id=bot_id,
            username=username or f"ktn_test{number}_bot",
            first_name=first_name or f"KTN Test Bot {number}",
        )
        self.bots[token] = bot
        return bot

    def get_bot(self, ref: BotRef = None) -> FakeBot:
        """A bot by token or username; None is the first bot added."""
        if isinstance(ref, FakeBot):
            return ref
        if ref is None:
            if not self.bots:
                raise LookupError("the fake has no bot: call add_bot(token) first")
            return next(iter(self.bots.values()))
        if ref in self.bots:
            return self.bots[ref]
        for bot in self.bots.values():
            if bot.username == ref.lstrip("@"):
                return bot
        raise LookupError(f"unknown bot {ref!r}")

    # ---------------------------------------------------------- users and chats

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
    ) -> User:
        """Create a user (and their private chat, whose id is the user id)."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = User(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        self.chats[user_id] = Chat(user_id, "private", user=user)
        return user

    def _user(self, user_id: int) -> User:
        """A user, created with a generated name on first use."""
        return self.users.get(user_id) or self.add_user(user_id, f"User{user_id}")

    def add_group(
        self,
        chat_id: int,
        title: str,
        kind: Literal["group", "supergroup"] = "group",
        members: Iterable[int] = (),
        *,
        bots: Iterable[BotRef] | None = None,
    ) -> Chat:
        """Create a group the bots are in (``bots=None``: every bot so far; ``()``: none)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        member_ids = set(members)
        for user_id in member_ids:
            self._user(user_id)
        if bots is None:
            bot_ids = {b.id for b in self.bots.values()}
        else:
            bot_ids = {self.get_bot(b).id for b in bots}
        chat = Chat(chat_id, kind, title=title, members=member_ids, bot_ids=bot_ids)
        self.chats[chat_id] = chat
        return chat

    def _chat_for(self, chat_id: int, user: User) -> Chat:
        """The chat a user writes in (their private chat or a group they are added to)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise LookupError(f"unknown chat {chat_id}: call add_group() first")
        if chat.type == "private" and chat_id != user.id:
            raise ValueError(f"user {user.id} cannot write in the private chat {chat_id}")
        if chat.migrated_to is not None:
            raise LookupError(f"group {chat_id} was migrated to {chat.migrated_to}")
        chat.members.add(user.id)
        return chat

    def start(self, user_id: int, payload: str | None = None, *, bot: BotRef = None) -> int:
        """The user presses Start (or Restart after blocking): sends "/start [payload]"."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        if user_id in fake_bot.blocked:
            fake_bot.blocked.discard(user_id)
            self._member_update(fake_bot, self.chats[user_id], user, "kicked", "member")
        fake_bot.started.add(user_id)
        return self.send_text(
            user_id, user_id, f"/start {payload}" if payload else "/start", bot=bot
        )

    def block(self, user_id: int, *, bot: BotRef = None) -> int:
        """The user blocks the bot (my_chat_member update: member -> kicked)."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        fake_bot.blocked.add(user_id)
        return self._member_update(fake_bot, self.chats[user_id], user, "member", "kicked")

    def add_bot_to_group(self, chat_id: int, by_user_id: int, *, bot: BotRef = None) -> int:
        """A user adds the bot: my_chat_member update (returned) then a new_chat_members message."""
        fake_bot = self.get_bot(bot)
        user = self._user(by_user_id)
        chat = self._chat_for(chat_id, user)
        old = "kicked" if fake_bot.id in chat.kicked_bot_ids else "left"
        chat.bot_ids.add(fake_bot.id)
        chat.kicked_bot_ids.discard(fake_bot.id)
        update_id = self._member_update(fake_bot, chat, user, old, "member")
        self._message_update(fake_bot, chat, user, {"new_chat_members": [fake_bot.to_api()]})
        return update_id

    def remove_bot_from_group(self, chat_id: int, by_user_id: int, *, bot: BotRef = None) -> int:
        """A user removes the bot from a group (my_chat_member: member -> kicked)."""
        fake_bot = self.get_bot(bot)
        user = self._user(by_user_id)
        chat = self._chat_for(chat_id, user)
        chat.bot_ids.discard(fake_bot.id)
        chat.kicked_bot_ids.add(fake_bot.id)
        return self._member_update(fake_bot, chat, user, "member", "kicked")

    def migrate_group(
        self, old_chat_id: int, new_chat_id: int | None = None, *, by_user_id: int | None = None
    ) -> int:
        """Upgrade a group to a supergroup (id -100...); its bots get the service messages."""
        old = self.chats.get(old_chat_id)
        if old is None or old.type != "group" or old.migrated_to is not None:
            raise LookupError(f"{old_chat_id} is not an active basic group")
        new_id = new_chat_id or -(10**12 + abs(old_chat_id) % 10**10)
        new = Chat(
            new_id, "supergroup", old.title, members=set(old.members), bot_ids=set(old.bot_ids)
        )
        self.chats[new_id] = new
        old.migrated_to = new_id
        user = self._user(by_user_id or min(old.members, default=777000))
        for bot in self.bots.values():
            if bot.id in old.bot_ids:
                self._message_update(bot, old, user, {"migrate_to_chat_id": new_id})
                self._message_update(bot, new, user, {"migrate_from_chat_id": old_chat_id})
        return new_id

    # --------------------------------------------------------- simulated input

    def send_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        bot: BotRef = None,
    ) -> int:
        """The user sends text; a leading /command (or /command@bot) gets a bot_command entity."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        chat = self._chat_for(chat_id, user)
        content: JSON = {"text": text}
        match = COMMAND_RE.match(text)
        if match:
            length = utf16_len(match.group(0))
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if reply_to is not None:
            content["reply_to_message"] = self._find_any(fake_bot, chat.id, reply_to)
        return self._message_update(fake_bot, chat, user, content)

    def send_location(
        self, chat_id: int, user_id: int, latitude: float, longitude: float, *, bot: BotRef = None
    ) -> int:
        """The user shares a location (e.g. via a request_location keyboard button)."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        location = {"latitude": latitude, "longitude": longitude}
        return self._message_update(
            fake_bot, self._chat_for(chat_id, user), user, {"location": location}
        )

    def send_photo(
        self,
        chat_id: int,
        user_id: int,
        data: bytes = PLACEHOLDER_JPEG,
        caption: str | None = None,
        *,
        bot: BotRef = None,
    ) -> int:
        """The user sends a photo; its bytes are downloadable through getFile."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        chat = self._chat_for(chat_id, user)
        content: JSON = {"photo": self.store_photo(data)}
        if caption:
            check_caption(caption, None)
            content["caption"] = caption
        return self._message_update(fake_bot, chat, user, content)

    def send_document(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        filename: str,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        *,
        bot: BotRef = None,
    ) -> int:
        """The user sends a file as a document."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        stored = self.store_file(
            "documents", data, filename.rsplit(".", 1)[-1], mime_type, filename
        )
        content: JSON = {"document": self.document_api(stored)}
        if caption:
            content["caption"] = caption
        return self._message_update(fake_bot, self._chat_for(chat_id, user), user, content)

    def send_voice(
        self,
        chat_id: int,
        user_id: int,
        data: bytes = PLACEHOLDER_OGG,
        duration: int = 3,
        *,
        bot: BotRef = None,
    ) -> int:
        """The user sends a voice note."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        stored = self.store_file("voice", data, "oga", "audio/ogg", None)
        content: JSON = {"voice": self.voice_api(stored, duration)}
        return self._message_update(fake_bot, self._chat_for(chat_id, user), user, content)

    def send_sticker(
        self, chat_id: int, user_id: int, emoji: str = "👍", *, bot: BotRef = None
    ) -> int:
        """The user sends a sticker."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        stored = self.store_file("stickers", b"RIFFfake-webp", "webp", "image/webp", None)
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.data),
        }
        return self._message_update(
            fake_bot, self._chat_for(chat_id, user), user, {"sticker": sticker}
        )

    def send_contact(
        self, chat_id: int, user_id: int, phone_number: str, *, bot: BotRef = None
    ) -> int:
        """The user shares their own contact (a request_contact keyboard button)."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        contact = {"phone_number": phone_number, "first_name": user.first_name, "user_id": user.id}
        return self._message_update(
            fake_bot, self._chat_for(chat_id, user), user, {"contact": contact}
        )

    def press_button(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        data: str,
        *,
        bot: BotRef = None,
        check: bool = True,
    ) -> int:
        """The user presses an inline button (``check``: the message must show that button)."""
        fake_bot = self.get_bot(bot)
        user = self._user(user_id)
        chat = self._chat_for(chat_id, user)
        record = fake_bot.find_sent(chat.id, message_id)
        if record is None or record.deleted:
            raise LookupError(f"the bot has no message {message_id} in chat {chat_id}")
        if check and data not in record.button_data():
            raise LookupError(
                f"message {message_id} has no button {data!r}; it has {record.button_data()}"
            )
        query_id = str(next(self._query_ids))
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": record.raw,
            "chat_instance": str(abs(hash((fake_bot.id, chat.id)))),
            "data": data,
        }
        fake_bot.callback_queries[query_id] = CallbackQueryState(
            query_id, user.id, chat.id, message_id, self.clock()
        )
        return self._queue(fake_bot, "callback_query", query, chat.id)

    def redeliver(self, update_id: int, *, bot: BotRef = None) -> int:
        """Queue an already sent update again, same update_id (as Telegram retries can)."""
        fake_bot = self.get_bot(bot)
        update = fake_bot.history.get(update_id)
        if update is None:
            raise LookupError(f"no update {update_id} was ever sent to {fake_bot.username}")
        fake_bot.pending.append(Pending(update))
        self.emit("update", fake_bot, self._update_chat_id(update), update)
        return update_id

    # ---------------------------------------------------------- update plumbing

    @staticmethod
    def _update_chat_id(update: JSON) -> int | None:
        """The chat an update belongs to."""
        for key, value in update.items():
            if key == "update_id" or not isinstance(value, dict):
                continue
            message = value.get("message", value)
            chat = message.get("chat") if isinstance(message, dict) else None
            if isinstance(chat, dict):
                return int(chat["id"])
        return None

    def _queue(self, bot: FakeBot, kind: str, payload: JSON, chat_id: int) -> int:
        """Queue an update for the bot (getUpdates or webhook); returns its update_id."""
        update_id = bot.take_update_id()
        update: JSON = {"update_id": update_id, kind: payload}
        bot.history[update_id] = update
        bot.pending.append(Pending(update))
        event = self.emit("update", bot, chat_id, update)
        self._last_action[(bot.token, chat_id)] = event.id
        return update_id

    def _message_update(self, bot: FakeBot, chat: Chat, user: User, content: JSON) -> int:
        """Queue a ``message`` update from a user."""
        if chat.type != "private" and bot.id not in chat.bot_ids:
            raise LookupError(f"{bot.username} is not in chat {chat.id}: add_bot_to_group() first")
        message_id = bot.next_message_id(chat.id)
        message: JSON = {
            "message_id": message_id,
            "from": user.to_api(),
            "chat": chat.to_api(),
            "date": now_ts(),
            **content,
        }
        bot.user_messages[(chat.id, message_id)] = message
        if chat.type == "private":
            bot.started.add(user.id)
            bot.blocked.discard(user.id)
        return self._queue(bot, "message", message, chat.id)

    def _member_update(self, bot: FakeBot, chat: Chat, user: User, old: str, new: str) -> int:
        """Queue a ``my_chat_member`` update about the bot's own status."""

        def member(status: str) -> JSON:
            data: JSON = {"status": status, "user": bot.to_api()}
            if status == "kicked":
                data["until_date"] = 0
            return data

        payload = {
            "chat": chat.to_api(),
            "from": user.to_api(),
            "date": now_ts(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self._queue(bot, "my_chat_member", payload, chat.id)

    def _find_any(self, bot: FakeBot, chat_id: int, message_id: int) -> JSON:
        """A message (the bot's or a user's) by id, as a Bot API object."""
        record = bot.find_sent(chat_id, message_id)
        if record is not None:
            return record.raw
        found = bot.user_messages.get((chat_id, message_id))
        if found is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return found

    # ------------------------------------------------------------------ files

    def store_file(
        self, folder: str, data: bytes, suffix: str, mime: str | None, filename: str | None
    ) -> StoredFile:
        """Keep a file so getFile and the download route serve it."""
        stored = StoredFile.create(folder, data, suffix, mime, filename)
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def store_photo(self, data: bytes) -> list[JSON]:
        """Keep a photo; returns its PhotoSize list (a thumbnail and the original)."""
        width, height = image_size(data)
        small = self.store_file("photos", data, "jpg", "image/jpeg", None)
        large = self.store_file("photos", data, "jpg", "image/jpeg", None)
        scale = 90 / max(width, height, 1)
        sizes = [
            self._size(small, max(1, round(width * scale)), max(1, round(height * scale))),
            self._size(large, width, height),
        ]
        for size in sizes:
            self.photo_sizes[size["file_id"]] = sizes
        return sizes

    @staticmethod
    def _size(stored: StoredFile, width: int, height: int) -> JSON:
        """A PhotoSize object."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(stored.data),
        }

    @staticmethod
    def document_api(stored: StoredFile) -> JSON:
        """A Document object."""
        data: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.filename:
            data["file_name"] = stored.filename
        if stored.mime_type:
            data["mime_type"] = stored.mime_type
        return data

    @staticmethod
    def voice_api(stored: StoredFile, duration: int) -> JSON:
        """A Voice object."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": stored.mime_type or "audio/ogg",
            "file_size": len(stored.data),
        }

    # ---------------------------------------------------- bot-side bookkeeping

    def target_chat(self, bot: FakeBot, chat_id: int, *, sending: bool = True) -> Chat:
        """The chat a bot call addresses, or the error Telegram would answer."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if not sending:
            return chat
        if chat.type == "private":
            if chat.id in bot.blocked:
                raise forbidden("bot was blocked by the user")
            if chat.id not in bot.started:
                raise forbidden("bot can't initiate conversation with a user")
        elif bot.id in chat.kicked_bot_ids:
            raise forbidden(f"bot was kicked from the {chat.type} chat")
        elif bot.id not in chat.bot_ids:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    def check_flood(self, bot: FakeBot, chat: Chat) -> None:
        """Count one message against the flood limits (raises the 429)."""
        self.flood.check(bot.token, chat.id, chat.type == "private")

    def new_bot_message(
        self, bot: FakeBot, chat: Chat, content: JSON, markup: JSON | None, reply: JSON | None
    ) -> JSON:
        """A Message object sent by the bot."""
        message: JSON = {
            "message_id": bot.next_message_id(chat.id),
            "from": bot.to_api(),
            "chat": chat.to_api(),
            "date": now_ts(),
            **content,
        }
        if inline_only(markup):
            message["reply_markup"] = markup
        if reply is not None:
            message["reply_to_message"] = {
                k: v for k, v in reply.items() if k != "reply_to_message"
            }
        return message

    def record_sent(
        self,
        bot: FakeBot,
        chat: Chat,
        kind: MessageKind,
        message: JSON,
        *,
        markup: JSON | None = None,
        parse_mode: str | None = None,
        source: str | None = None,
        file: StoredFile | None = None,
    ) -> SentMessage:
        """Record a message the bot sent, and emit its event."""
        location = message.get("location")
        record = SentMessage(
            bot=bot.username,
            chat_id=chat.id,
            message_id=int(message["message_id"]),
            kind=kind,
            text=message.get("text"),
            caption=message.get("caption"),
            reply_markup=markup,
            parse_mode=parse_mode,
            received_at=self.clock(),
            event_id=len(self.events) + 1,
            raw=message,
            location=(location["latitude"], location["longitude"]) if location else None,
            file_id=file.file_id if file else None,
            filename=file.filename if file else None,
            source=source,
        )
        bot.add_sent(record)
        self.emit("message", bot, chat.id, record.to_json())
        return record

    def record_edit(
        self,
        bot: FakeBot,
        record: SentMessage,
        *,
        text: str | None,
        caption: str | None,
        markup: JSON | None,
        source: str | None = None,
    ) -> JSON:
        """Apply an edit (keeping the old version) and emit its event; returns the Message."""
        record.edits.append(Edit(record.text, record.caption, record.reply_markup, self.clock()))
        record.text, record.caption, record.reply_markup = text, caption, markup
        record.source = source if source is not None else record.source
        raw = {k: v for k, v in record.raw.items() if k != "reply_markup"}
        raw["edit_date"] = now_ts()
        if text is not None:
            raw["text"] = text
        if caption is not None:
            raw["caption"] = caption
        if inline_only(markup):
            raw["reply_markup"] = markup
        record.raw = raw
        self.emit("edit", bot, record.chat_id, record.to_json())
        return raw

    def record_callback_answer(
        self,
        bot: FakeBot,
        state: CallbackQueryState,
        text: str | None,
        alert: bool,
        url: str | None,
    ) -> CallbackAnswer:
        """Record answerCallbackQuery and emit its event."""
        answer = CallbackAnswer(
            bot=bot.username,
            callback_query_id=state.id,
            user_id=state.user_id,
            chat_id=state.chat_id,
            message_id=state.message_id,
            text=text,
            show_alert=alert,
            url=url,
            event_id=len(self.events) + 1,
            at=self.clock(),
        )
        self.callback_answers.append(answer)
        self.emit("callback_answer", bot, state.chat_id, dict(answer.__dict__))
        return answer

    # ------------------------------------------------------------ observation

    def messages(self, chat_id: int, *, bot: BotRef = None) -> list[SentMessage]:
        """What the bot sent to a chat, oldest first (deleted ones included, flagged)."""
        return list(self.get_bot(bot).sent.get(chat_id, ()))

    def last_message(self, chat_id: int, *, bot: BotRef = None) -> SentMessage | None:
        """The latest message the bot sent to a chat."""
        sent = self.get_bot(bot).sent.get(chat_id)
        return sent[-1] if sent else None

    @property
    def sent_count(self) -> int:
        """Messages delivered by all bots (sends, not edits)."""
        return sum(b.sent_count for b in self.bots.values())

    @property
    def commands(self) -> dict[str, list[JSON]]:
        """The first bot's default-scope commands by language code ("" = no language)."""
        bot = self.get_bot()
        return {lang: cmds for (scope, lang), cmds in bot.commands.items() if scope == "default"}

    def commands_for(
        self, language_code: str = "", scope: str = "default", *, bot: BotRef = None
    ) -> list[JSON]:
        """Commands set for a scope key ("default", "all_group_chats", "chat:ID"...)."""
        return list(self.get_bot(bot).commands.get((scope, language_code), []))

    @property
    def fault_counts(self) -> Counter[str]:
        """Injected faults by kind ("5xx", "429", "timeout", "timeout_delivered")."""
        return self.faults.counts

    def set_flood_limits(self, limits: FloodLimits | None) -> None:
        """Replace the flood limits (counters reset); None turns flood control off."""
        self.flood.reset()
        self.flood.enabled = limits is not None
        if limits is not None:
            self.flood.limits = limits

    def fail_next(
        self,
        method: str,
        status: int | Literal["timeout"] = 500,
        *,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls of a method (any bot) with that status or a timeout."""
        self.faults.queue(method, Fault(status, retry_after, description), times)

    def set_fault_rate(
        self, rate: float, seed: int = 0, kinds: Iterable[FaultKind] = ("5xx", "429", "timeout")
    ) -> None:
        """Make that fraction of send* calls fail, seeded; 0 turns it off."""
        self.faults.set_rate(rate, seed, kinds)

    # ---------------------------------------------------------------- waiting

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Await the first truthy ``predicate()`` (re-checked on every change), or TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed:
                detail = describe() if describe else "condition not met"
                raise TimeoutError(f"after {timeout}s: {detail}")
            await self.wait_change(remaining)

    def _since(self, bot: FakeBot, chat_id: int, since: int | None) -> int:
        """Default ``since``: the user's latest action in that chat."""
        return since if since is not None else self._last_action.get((bot.token, chat_id), 0)

    def _describe_chat(self, bot: FakeBot, chat_id: int, wanted: str) -> Callable[[], str]:
        """A description of what a chat received, for timeouts."""

        def describe() -> str:
            got = [m.describe() for m in bot.sent.get(chat_id, ())]
            return f"{wanted} in chat {chat_id}; the chat received {got or 'nothing'}"

        return describe

    def _matcher(
        self,
        bot: FakeBot,
        chat_id: int,
        kind: str,
        since: int,
        test: Callable[[SentMessage, JSON], bool],
    ) -> Callable[[], SentMessage | None]:
        """A predicate finding the first matching event after ``since`` (scanning each once)."""
        cursor = since

        def find() -> SentMessage | None:
            nonlocal cursor
            while cursor < len(self.events):
                event = self.events[cursor]
                cursor += 1
                if event.type != kind or event.bot != bot.username or event.chat_id != chat_id:
                    continue
                record = bot.find_sent(chat_id, int(event.data["message_id"]))
                if record is not None and test(record, event.data):
                    return record
            return None

        return find

    async def wait_for_message(
        self,
        chat_id: int,
        contains: str | None = None,
        *,
        predicate: Callable[[SentMessage], bool] | None = None,
        since: int | None = None,
        bot: BotRef = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """The first bot message in a chat after ``since`` (default: the user's latest action)."""
        fake_bot = self.get_bot(bot)
        start = self._since(fake_bot, chat_id, since)

        def test(record: SentMessage, data: JSON) -> bool:
            text = data.get("text") or data.get("caption") or ""
            found = contains is None or contains in text
            return found and (predicate is None or predicate(record))

        wanted = "no message" + (f" containing {contains!r}" if contains else "")
        return await self.wait_for(
            self._matcher(fake_bot, chat_id, "message", start, test),
            timeout,
            self._describe_chat(fake_bot, chat_id, wanted),
        )

    async def wait_for_edit(
        self,
        chat_id: int,
        message_id: int | None = None,
        contains: str | None = None,
        *,
        since: int | None = None,
        bot: BotRef = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """The first bot message edited after ``since`` (default: the user's latest action)."""
        fake_bot = self.get_bot(bot)
        start = self._since(fake_bot, chat_id, since)

        def test(record: SentMessage, data: JSON) -> bool:
            text = data.get("text") or data.get("caption") or ""
            ok_id = message_id is None or record.message_id == message_id
            return ok_id and (contains is None or contains in text)

        wanted = f"no edit of message {message_id or 'any'}"
        return await self.wait_for(
            self._matcher(fake_bot, chat_id, "edit", start, test),
            timeout,
            self._describe_chat(fake_bot, chat_id, wanted),
        )

    async def wait_for_callback_answer(
        self,
        callback_query_id: str | None = None,
        *,
        since: int = 0,
        chat_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallbackAnswer:
        """The first callback answer after event ``since`` (optionally for one query id, or to
        a press in one chat)."""

        def find() -> CallbackAnswer | None:
            for answer in self.callback_answers:
                if (
                    answer.event_id > since
                    and callback_query_id in (None, answer.callback_query_id)
                    and chat_id in (None, answer.chat_id)
                ):
                    return answer
            return None

        return await self.wait_for(find, timeout, lambda: "no callback answer")

    async def wait_events(self, after: int, timeout: float) -> list[Event]:  # noqa: ASYNC109
        """Events with id > ``after``, waiting up to ``timeout`` for the first one."""
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: len(self.events) > after, timeout)
        return self.events[after:]

    # ----------------------------------------------------------------- webhooks

    def set_webhook(self, bot: FakeBot, hook: Webhook | None) -> None:
        """Install (or remove) a webhook and (re)start its delivery task."""
        bot.webhook = hook
        old = self._workers.pop(bot.token, None)
        if old is not None:
            old.cancel()
        if hook is not None:
            task = asyncio.create_task(self._deliver(bot, hook), name=f"webhook:{bot.username}")
            self._workers[bot.token] = task
        self.notify()

    def _client(self) -> httpx.AsyncClient:
        """The client posting webhook updates."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.webhook_timeout)
        return self._http

    async def _deliver(self, bot: FakeBot, hook: Webhook) -> None:
        """Post queued updates to the webhook as Telegram does: up to ``max_connections`` at
        once, but one chat's updates one after another, each only once the last was answered."""
        in_flight: dict[int, asyncio.Task[None]] = {}  # id(entry) -> its delivery
        busy_chats: set[int] = set()

        async def deliver_one(entry: Pending, chat: int | None) -> None:
            try:
                ok = await self._post(bot, hook, entry.update)
                bot.pending = [p for p in bot.pending if p is not entry]
                if ok:
                    hook.delivered += 1
                else:
                    hook.dropped += 1
            finally:
                in_flight.pop(id(entry), None)
                if chat is not None:
                    busy_chats.discard(chat)
                self.notify()

        try:
            while not self.closed and bot.webhook is hook:
                started = False
                blocked: set[int] = set()
                for entry in list(bot.pending):
                    if len(in_flight) >= hook.max_connections:
                        break
                    chat = self._update_chat_id(entry.update)
                    if id(entry) in in_flight or chat in busy_chats or chat in blocked:
                        if chat is not None:
                            blocked.add(chat)  # a later update of this chat waits its turn
                        continue
                    if chat is not None:
                        busy_chats.add(chat)
                    in_flight[id(entry)] = asyncio.create_task(deliver_one(entry, chat))
                    started = True
                if not started:
                    await self.wait_change(None)
        finally:
            for task in list(in_flight.values()):
                task.cancel()

    async def _post(self, bot: FakeBot, hook: Webhook, update: JSON) -> bool:
        """POST one update; retry with a short backoff; False when every attempt failed."""
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        )
        for attempt in range(self.webhook_retries + 1):
            if attempt:
                await self.wait_closed(0.05 * 2 ** (attempt - 1))
            if self.closed or bot.webhook is not hook:
                return False
            try:
                response = await self._client().post(hook.url, json=update, headers=headers)
            except httpx.HTTPError as exc:
                error = f"Connection failed: {type(exc).__name__}"
            else:
                if response.is_success:
                    return True
                error = f"Wrong response from the webhook: {response.status_code}"
                error += f" {response.reason_phrase}"
            hook.failed_attempts += 1
            hook.last_error_date = now_ts()
            hook.last_error_message = error
        return False

    def count_error(self, error: ApiError) -> None:
        """Count a 429 answer."""
        if error.code == 429:
            self.count_429 += 1
