"""A local fake of the Telegram Bot API, speaking real HTTP, for tests, benchmarks and the sandbox.

Start it and point python-telegram-bot at it::

    async with TelegramFake() as fake:                 # serves on 127.0.0.1, a free port
        bot = telegram.Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url,
                           base_file_url=fake.file_api_url)
        fake.add_user(42, "Siti")
        fake.start(42)                                  # the user presses Start ("/start")
        ...                                             # the bot replies through the Bot API
        reply = await fake.wait_for_message(42, contains="Selamat")

``fake.app`` is a plain Starlette app: mount it elsewhere, or ``fake.serve(host, port)``.

Bot API (what the bot calls): ``POST|GET /bot<token>/<method>`` (form, multipart or JSON) and
``GET /file/bot<token>/<file_path>``. Answers are Telegram's ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code", "description", "parameters"}`` with Telegram's texts and HTTP
statuses; unknown token 401, unknown method 404. Several tokens can be served at once
(``add_bot``), each with its own updates, messages and flood counters. Flood limits
(``FloodLimits``) and fault injection (``fail_next``, ``set_fault_rate``) apply to send*/edit*.

Simulation API (what users do), JSON in and out, for the sandbox page:

- ``POST /_sim/users``   ``{"user_id", "first_name", "last_name"?, "username"?, "language_code"?}``
- ``POST /_sim/groups``  ``{"chat_id" (< 0), "title", "kind": "group"|"supergroup", "members"}``
- ``POST /_sim/start``   ``{"user_id", "payload"?, "bot"?}``        -> ``{"update_id"}``
- ``POST /_sim/text``    ``{"chat_id", "user_id", "text", "bot"?}``  -> ``{"update_id"}``
- ``POST /_sim/location`` ``{"chat_id", "user_id", "latitude", "longitude", "bot"?}``
- ``POST /_sim/photo``   multipart ``chat_id``, ``user_id``, ``caption``?, file ``photo``
  (or JSON with ``photo_base64``)
- ``POST /_sim/button``  ``{"chat_id", "user_id", "message_id", "data", "bot"?}``
- ``POST /_sim/block``   ``{"user_id", "bot"?}``
- ``GET /_sim/state``    -> ``{"bots", "users", "chats", "last_event_id"}``
- ``GET /_sim/chats/<chat_id>/messages?bot=`` -> ``{"messages": [message record...]}``
- ``GET /_sim/files/<file_id>`` -> the file's bytes (photos and documents the bot sent)
- ``GET /_sim/events?after=N&timeout=25`` -> ``{"events": [...], "last_id"}``: long-polls until
  an event with id > N exists. Events: ``{"id", "type", "bot", "chat_id", "at", "data"}`` with type
  ``update`` (a user action; data is the Update), ``message`` / ``edit`` (data is the message
  record), ``delete``, ``callback_answer``, ``chat_action``, ``commands``. Ids start at 1 and only
  grow. ``bot`` is a username or token; omitted means the first bot.

Errors of the simulation API are ``{"error": "..."}`` with HTTP 400 (404 for an unknown action).
"""

from bot.sandbox.telegram_fake.fake import DEFAULT_TOKEN, TelegramFake
from bot.sandbox.telegram_fake.limits import Fault, FloodLimits
from bot.sandbox.telegram_fake.records import (
    ApiError,
    CallbackAnswer,
    Chat,
    Edit,
    Event,
    FakeBot,
    SentMessage,
    StoredFile,
    User,
    Webhook,
)

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "CallbackAnswer",
    "Chat",
    "Edit",
    "Event",
    "FakeBot",
    "Fault",
    "FloodLimits",
    "SentMessage",
    "StoredFile",
    "TelegramFake",
    "User",
    "Webhook",
]
