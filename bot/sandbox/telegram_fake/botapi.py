"""The Bot API methods the fake implements: parameter parsing, checks and results."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.sandbox.telegram_fake.limits import (
    check_caption,
    check_reply_markup,
    check_text,
    visible_text,
)
from bot.sandbox.telegram_fake.records import (
    JSON,
    ApiError,
    Chat,
    FakeBot,
    MessageKind,
    SentMessage,
    StoredFile,
    Upload,
    Webhook,
    bad_request,
)

if TYPE_CHECKING:
    from bot.sandbox.telegram_fake.fake import TelegramFake

Handler = Callable[["TelegramFake", FakeBot, "Params"], Any]
METHODS: dict[str, Handler] = {}
SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
ACCEPTED = (
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
    "logOut",
    "close",
)


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a Bot API method (names are case-insensitive, as Telegram's)."""

    def register(fn: Handler) -> Handler:
        METHODS[name.lower()] = fn
        return fn

    return register


class Params:
    """A method's parameters: form strings (non-strings JSON-encoded), JSON values or uploads."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def value(self, name: str) -> Any:
        """The raw value, None when absent or empty."""
        value = self.raw.get(name)
        return None if value == "" else value

    def get_str(self, name: str) -> str | None:
        """A string parameter."""
        value = self.value(name)
        return None if value is None else str(value)

    def get_int(self, name: str) -> int | None:
        """An integer parameter (400 when malformed)."""
        value = self.value(name)
        if value is None or isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        """A float parameter (400 when malformed)."""
        value = self.value(name)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        """A boolean parameter (false when absent)."""
        value = self.value(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str) -> Any:
        """A JSON-encoded parameter (object, array)."""
        value = self.value(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def require_int(self, name: str) -> int:
        """A required integer parameter."""
        value = self.get_int(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def chat_id(self) -> int:
        """``chat_id``: "chat not found" unless it is a known numeric id."""
        value = self.value("chat_id")
        if value is None:
            raise bad_request("chat_id is empty")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None

    def file(self, name: str) -> Upload | str | None:
        """A file parameter: an upload, or a file_id / URL string (``attach://`` resolved)."""
        value = self.value(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = self.value(value.removeprefix("attach://"))
        if isinstance(value, Upload) or value is None:
            return value
        return str(value)


def accept_true(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Methods the fake accepts without modelling them."""
    return True


for _name in ACCEPTED:
    METHODS[_name.lower()] = accept_true


# ------------------------------------------------------------------- updates


@method("getMe")
def get_me(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """The bot's own user."""
    return bot.to_api()


def confirm(bot: FakeBot, offset: int | None) -> None:
    """Forget updates confirmed by ``offset`` (negative: keep only the last -offset)."""
    if offset is None:
        return
    if offset < 0:
        bot.pending = bot.pending[offset:]
        return
    bot.pending = [e for e in bot.pending if not (e.delivered and e.update_id < offset)]


@method("getUpdates")
async def get_updates(fake: TelegramFake, bot: FakeBot, p: Params) -> list[JSON]:
    """Long polling: answers as soon as an update is queued, or after ``timeout`` seconds."""
    check_no_webhook(bot)
    limit = min(max(p.get_int("limit") or 100, 1), 100)
    timeout = max(p.get_float("timeout") or 0.0, 0.0)
    bot.poll_generation += 1
    generation = bot.poll_generation
    fake.notify()
    confirm(bot, p.get_int("offset"))

    def ready() -> bool:
        """Something to answer, or a reason to stop waiting."""
        superseded = bot.poll_generation != generation
        return fake.closed or superseded or bot.webhook is not None or bool(bot.pending)

    if not ready():
        try:
            await fake.wait_for(ready, timeout)
        except TimeoutError:
            return []
    if bot.poll_generation != generation:
        raise ApiError(
            409,
            "Conflict: terminated by other getUpdates request; "
            "make sure that only one bot instance is running",
        )
    check_no_webhook(bot)
    batch = bot.pending[:limit]
    for entry in batch:
        entry.delivered = True
    return [entry.update for entry in batch]


def check_no_webhook(bot: FakeBot) -> None:
    """getUpdates is refused while a webhook is set."""
    if bot.webhook is not None:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )


@method("setWebhook")
def set_webhook(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Install a webhook (an empty url removes it); http:// is allowed for local receivers."""
    url = p.get_str("url")
    secret = p.get_str("secret_token")
    if secret is not None and not SECRET_RE.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    if url and not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if p.get_bool("drop_pending_updates"):
        bot.pending.clear()
    hook = Webhook(url, secret, p.get_int("max_connections") or 40) if url else None
    fake.set_webhook(bot, hook)
    return True


@method("deleteWebhook")
def delete_webhook(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Remove the webhook; pending updates stay for getUpdates unless dropped."""
    if p.get_bool("drop_pending_updates"):
        bot.pending.clear()
    fake.set_webhook(bot, None)
    return True


@method("getWebhookInfo")
def get_webhook_info(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """The webhook status."""
    hook = bot.webhook
    info: JSON = {
        "url": hook.url if hook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.pending),
    }
    if hook is not None:
        info["max_connections"] = hook.max_connections
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
    return info


# ------------------------------------------------------------------ sending


def reply_target(fake: TelegramFake, bot: FakeBot, chat: Chat, p: Params) -> JSON | None:
    """The message replied to (reply_parameters or reply_to_message_id)."""
    params = p.get_json("reply_parameters")
    reply_id = p.get_int("reply_to_message_id")
    allow = p.get_bool("allow_sending_without_reply")
    if isinstance(params, dict):
        reply_id = params.get("message_id")
        allow = allow or bool(params.get("allow_sending_without_reply"))
    if reply_id is None:
        return None
    try:
        return fake._find_any(bot, chat.id, int(reply_id))
    except LookupError:
        if allow:
            return None
        raise bad_request("message to be replied not found") from None


def send(
    fake: TelegramFake,
    bot: FakeBot,
    p: Params,
    kind: MessageKind,
    content: Callable[[], tuple[JSON, StoredFile | None]],
) -> JSON:
    """Shared send flow: chat checks, markup, caption, flood control, then record."""
    chat = fake.target_chat(bot, p.chat_id())
    parse_mode = p.get_str("parse_mode")
    markup = check_reply_markup(p.get_json("reply_markup"))
    reply = reply_target(fake, bot, chat, p)
    caption = p.get_str("caption")
    check_caption(caption, parse_mode)
    body, stored = content()
    if caption:
        body["caption"] = visible_text(caption, parse_mode)
    fake.check_flood(bot, chat)
    message = fake.new_bot_message(bot, chat, body, markup, reply)
    source = p.get_str("text") or caption
    fake.record_sent(
        bot, chat, kind, message, markup=markup, parse_mode=parse_mode, source=source, file=stored
    )
    return message


@method("sendMessage")
def send_message(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Send text (1..4096 characters after entity parsing)."""
    text = p.get_str("text")
    parse_mode = p.get_str("parse_mode")

    def content() -> tuple[JSON, StoredFile | None]:
        check_text(text, parse_mode)
        return {"text": visible_text(text or "", parse_mode)}, None

    return send(fake, bot, p, "text", content)


@method("sendLocation")
def send_location(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Send a map point."""

    def content() -> tuple[JSON, StoredFile | None]:
        lat, lon = p.get_float("latitude"), p.get_float("longitude")
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad_request("wrong latitude or longitude specified")
        return {"location": {"latitude": lat, "longitude": lon}}, None

    return send(fake, bot, p, "location", content)


def input_file(
    fake: TelegramFake, p: Params, name: str, folder: str, suffix: str, mime: str
) -> tuple[StoredFile, bool]:
    """The file a send* call names: (stored file, True when newly uploaded)."""
    value = p.file(name)
    if value is None:
        raise bad_request(f"there is no {name} in the request")
    if isinstance(value, Upload):
        filename = value.filename
        ext = filename.rsplit(".", 1)[-1] if filename and "." in filename else suffix
        content_type = value.content_type or mime
        return fake.store_file(folder, value.data, ext, content_type, filename), True
    if value in fake.files:
        return fake.files[value], False
    if value.startswith(("http://", "https://")):
        name_part = value.rsplit("/", 1)[-1] or None
        return fake.store_file(folder, b"", suffix, mime, name_part), True
    raise bad_request("wrong file identifier/HTTP URL specified")


@method("sendPhoto")
def send_photo(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Send a photo: an upload, a known file_id or a URL."""

    def content() -> tuple[JSON, StoredFile | None]:
        stored, new = input_file(fake, p, "photo", "photos", "jpg", "image/jpeg")
        sizes = fake.photo_sizes.get(stored.file_id) if not new else None
        if sizes is None:
            sizes = fake.store_photo(stored.data)
        largest = fake.files[sizes[-1]["file_id"]]
        return {"photo": sizes}, largest

    return send(fake, bot, p, "photo", content)


@method("sendDocument")
def send_document(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Send a document (an upload keeps its filename)."""

    def content() -> tuple[JSON, StoredFile | None]:
        stored, _ = input_file(fake, p, "document", "documents", "bin", "application/octet-stream")
        return {"document": fake.document_api(stored)}, stored

    return send(fake, bot, p, "document", content)


@method("sendVoice")
def send_voice(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Send a voice note (file_id or upload)."""

    def content() -> tuple[JSON, StoredFile | None]:
        stored, _ = input_file(fake, p, "voice", "voice", "oga", "audio/ogg")
        return {"voice": fake.voice_api(stored, p.get_int("duration") or 1)}, stored

    return send(fake, bot, p, "voice", content)


@method("sendChatAction")
def send_chat_action(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """ "typing..." and friends; shown in the sandbox, not counted by flood control."""
    chat = fake.target_chat(bot, p.chat_id())
    action = p.get_str("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    fake.emit("chat_action", bot, chat.id, {"action": action})
    return True


# ------------------------------------------------------------------ editing


def edit_target(fake: TelegramFake, bot: FakeBot, p: Params) -> SentMessage:
    """The bot message an edit addresses."""
    if p.value("inline_message_id") is not None:
        raise bad_request("message to edit not found")
    chat = fake.target_chat(bot, p.chat_id(), sending=False)
    message_id = p.require_int("message_id")
    record = bot.find_sent(chat.id, message_id)
    if record is None or record.deleted:
        if (chat.id, message_id) in bot.user_messages:
            raise bad_request("message can't be edited")
        raise bad_request("message to edit not found")
    return record


def edit_markup(p: Params) -> JSON | None:
    """An edit's reply_markup: inline keyboards only; absent removes the keyboard."""
    markup = check_reply_markup(p.get_json("reply_markup"))
    if markup is not None and "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected")
    return markup


def current_inline(record: SentMessage) -> JSON | None:
    """The record's inline keyboard (reply keyboards are not part of the message)."""
    markup = record.reply_markup
    return markup if markup and "inline_keyboard" in markup else None


@method("editMessageText")
def edit_message_text(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Replace a text message's text (and its inline keyboard: absent removes it)."""
    record = edit_target(fake, bot, p)
    if record.kind != "text":
        raise bad_request("there is no text in the message to edit")
    text, parse_mode = p.get_str("text"), p.get_str("parse_mode")
    check_text(text, parse_mode)
    shown = visible_text(text or "", parse_mode)
    markup = edit_markup(p)
    if shown == record.text and markup == current_inline(record):
        raise bad_request(NOT_MODIFIED)
    fake.check_flood(bot, fake.chats[record.chat_id])
    return fake.record_edit(bot, record, text=shown, caption=None, markup=markup, source=text)


@method("editMessageCaption")
def edit_message_caption(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Replace a media message's caption."""
    record = edit_target(fake, bot, p)
    if record.kind == "text":
        raise bad_request("there is no caption in the message to edit")
    caption, parse_mode = p.get_str("caption"), p.get_str("parse_mode")
    check_caption(caption, parse_mode)
    shown = visible_text(caption or "", parse_mode)
    markup = edit_markup(p)
    if shown == (record.caption or "") and markup == current_inline(record):
        raise bad_request(NOT_MODIFIED)
    fake.check_flood(bot, fake.chats[record.chat_id])
    return fake.record_edit(bot, record, text=None, caption=shown, markup=markup, source=caption)


@method("editMessageReplyMarkup")
def edit_message_reply_markup(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """Replace (or, when absent, remove) a message's inline keyboard."""
    record = edit_target(fake, bot, p)
    markup = edit_markup(p)
    if markup == current_inline(record):
        raise bad_request(NOT_MODIFIED)
    fake.check_flood(bot, fake.chats[record.chat_id])
    return fake.record_edit(bot, record, text=record.text, caption=record.caption, markup=markup)


@method("deleteMessage")
def delete_message(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Delete a bot message (kept, flagged) or a user's message."""
    chat = fake.target_chat(bot, p.chat_id(), sending=False)
    message_id = p.require_int("message_id")
    record = bot.find_sent(chat.id, message_id)
    if record is not None and not record.deleted:
        record.deleted = True
    elif bot.user_messages.pop((chat.id, message_id), None) is None:
        raise bad_request("message to delete not found")
    fake.emit("delete", bot, chat.id, {"message_id": message_id})
    return True


@method("answerCallbackQuery")
def answer_callback_query(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Answer a button press, once, within ``callback_query_ttl`` seconds."""
    query_id = p.get_str("callback_query_id") or ""
    state = bot.callback_queries.get(query_id)
    if state is None or state.answered:
        raise bad_request(QUERY_TOO_OLD)
    if fake.clock() - state.created > fake.callback_query_ttl:
        raise bad_request(QUERY_TOO_OLD)
    text = p.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    state.answered = True
    fake.record_callback_answer(bot, state, text, p.get_bool("show_alert"), p.get_str("url"))
    return True


# ------------------------------------------------------------ chats and files


@method("getChat")
def get_chat(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """ChatFullInfo of a known chat."""
    return fake.target_chat(bot, p.chat_id(), sending=False).full_info()


@method("getFile")
def get_file(fake: TelegramFake, bot: FakeBot, p: Params) -> JSON:
    """A File with its download path (``GET /file/bot<token>/<file_path>``)."""
    stored = fake.files.get(p.get_str("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    return stored.to_api()


def scope_key(p: Params) -> str:
    """ "default", "all_private_chats", "chat:ID", "chat_member:ID:USER"... from a scope object."""
    scope = p.get_json("scope") or {"type": "default"}
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse BotCommandScope JSON object")
    parts = [str(scope["type"])]
    parts += [str(scope[key]) for key in ("chat_id", "user_id") if key in scope]
    return ":".join(parts)


@method("setMyCommands")
def set_my_commands(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Store the command list for a scope and language."""
    commands = p.get_json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        name = str(command.get("command", "")) if isinstance(command, dict) else ""
        description = str(command.get("description", "")) if isinstance(command, dict) else ""
        if not COMMAND_NAME_RE.fullmatch(name.lower()) or not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_INVALID")
    key = (scope_key(p), p.get_str("language_code") or "")
    bot.commands[key] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    fake.emit("commands", bot, None, {"scope": key[0], "language_code": key[1]})
    return True


@method("getMyCommands")
def get_my_commands(fake: TelegramFake, bot: FakeBot, p: Params) -> list[JSON]:
    """The commands for exactly that scope and language."""
    return list(bot.commands.get((scope_key(p), p.get_str("language_code") or ""), []))


@method("deleteMyCommands")
def delete_my_commands(fake: TelegramFake, bot: FakeBot, p: Params) -> bool:
    """Forget the commands for a scope and language."""
    bot.commands.pop((scope_key(p), p.get_str("language_code") or ""), None)
    return True


async def call(fake: TelegramFake, bot: FakeBot, name: str, p: Params) -> Any:
    """Run a method; may raise ApiError."""
    handler = METHODS.get(name.lower())
    if handler is None:
        raise ApiError(404, "Not Found")
    result = handler(fake, bot, p)
    if isinstance(result, Awaitable):
        return await result
    return result
