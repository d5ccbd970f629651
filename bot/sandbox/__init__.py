"""`ktn-bot sandbox`: try the bot with no token and no internet, a local Telegram and WhatsApp in
the browser.

One process, one event loop, one port: a Starlette app serves the page (``/``, ``/static/``,
``/sandbox.json``) and, mounted behind it, the fake Telegram Bot API of ``bot.telegram_fake``
(the same code the tests use): ``/bot<token>/...`` for the bot, ``/_sim/...`` for the page. The
real bot process (``bot.app.run``) runs in the same loop with ``telegram.base_url`` pointed at it,
its own SQLite file ``<data_dir>/sandbox.db`` (seeded on first start with the sample areas, an
officer, a coordinator and their linked group) and its health server on a free port.

The Twilio fake (``bot.sandbox.twilio_fake``) is served on the same port, WhatsApp is on in the
bot's settings, and the bot's webhooks listen on a free loopback port of their own, where the
WhatsApp pane's actions arrive as signed webhooks (``/_wa/...``, ``WhatsAppSim``).

The page shows five chats side by side: a resident's private chat, a resident on WhatsApp, the
area's officer group, the officer's private chat (where Selesai/Tolak ask for the note) and a
coordinator's private chat. The fakes' chats live in memory; the database persists
(``--reset`` starts over).
"""

from bot.sandbox.demo import PANES, SANDBOX_TOKEN, page_config
from bot.sandbox.seed import SeedError, seed_database, seed_fake
from bot.sandbox.server import (
    DEFAULT_PORT,
    build_app,
    database_path,
    reset_database,
    sandbox_settings,
    serve_sandbox,
)

__all__ = [
    "DEFAULT_PORT",
    "PANES",
    "SANDBOX_TOKEN",
    "SeedError",
    "build_app",
    "database_path",
    "page_config",
    "reset_database",
    "sandbox_settings",
    "seed_database",
    "seed_fake",
    "serve_sandbox",
]
