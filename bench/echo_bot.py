"""P1's baselines: a python-telegram-bot echo bot, run as its own process like ktn-bot.

    python bench/echo_bot.py <bot_api_base_url> [--tuned]

Bare (the issue's baseline): PTB's own echo example as written, with every default: PTB's httpx
transport, asyncio's own event loop, one update at a time. ``--tuned``: what ktn-bot runs on
(its transport ``send_request()`` on aiohttp, uvloop, its processor: different users' updates
concurrently, one user's in order), so the two bots differ only in what they do with an update.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.channels.telegram.channel import PerUserProcessor, send_request
from bot.sandbox.telegram_fake import DEFAULT_TOKEN


async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    """Say the text back."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(update.effective_message.text or "?")


def main() -> None:
    """Poll the given Bot API until SIGTERM."""
    builder = ApplicationBuilder().token(DEFAULT_TOKEN).base_url(sys.argv[1])
    if "--tuned" in sys.argv:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # run_polling makes its loop
        builder = builder.request(send_request()).concurrent_updates(PerUserProcessor(256))
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    print("telegram bot @echo started", file=sys.stderr, flush=True)
    app.run_polling(poll_interval=0, timeout=10)


if __name__ == "__main__":
    main()
