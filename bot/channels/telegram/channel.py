"""One Telegram bot: its PTB Application, polling or webhook, updates to the core.

A process runs one of these per bot token (``[[telegram.bots]]``); each tags its updates with
its bot key (``Inbound.message_id`` is ``<key>:<update_id>``, the core's ``Context.bot``)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeDefault,
    CallbackQuery,
    Update,
)
from telegram.error import TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ContextTypes,
    TypeHandler,
)

from bot.channels.ordering import ArrivalOrder
from bot.channels.replies import coalesce
from bot.channels.telegram.files import TelegramFiles
from bot.channels.telegram.inbound import to_inbound
from bot.channels.telegram.render import TEXT_LIMIT, Part, reply_parts
from bot.channels.telegram.sender import send_part, translate
from bot.channels.telegram.transport import AiohttpRequest
from bot.config import DEFAULT_MAX_BODY
from bot.inbound import OnInbound
from bot.metrics import Metrics
from bot.web.app import BodyTooLarge, read_body
from handlers.types import ChatKind, Inbound, InvalidInbound, Reply
from storage.types import DEFAULT_BOT

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/telegram/webhook"
MAX_REPLY_WAIT = 10.0  # seconds a direct reply may wait for Telegram's flood control
OnMigrate = Callable[[int, int], Awaitable[None]]
OnUndelivered = Callable[[int, Reply], Awaitable[None]]
NETWORK_TRIES = 3  # a direct reply that meets a 5xx or a timeout is tried this often, then queued


def send_request() -> AiohttpRequest:
    """The HTTP client for sends: enough pooled connections for the outbox's concurrent sends."""
    return AiohttpRequest(connection_pool_size=64, read_timeout=15, write_timeout=15)


def rest_of(reply: Reply, rest: list[Part]) -> Reply:
    """What is left of a reply after its first calls went out: the remaining text, the pin,
    and the buttons if the part that carries them is among the rest."""
    carries_buttons = any(part.markup is not None for part in rest)
    return Reply(
        text="\n".join(p.text for p in rest if p.text and p.media is None and p.document is None),
        options=reply.options if carries_buttons else (),
        location=next((p.location for p in rest if p.location is not None), None),
        ask_location=reply.ask_location and carries_buttons,
        location_label=reply.location_label,
    )


class TelegramChannel:
    """Receives updates (polling or webhook), hands them to the core, sends the replies."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        base_file_url: str,
        on_inbound: OnInbound,
        metrics: Metrics,
        mode: str = "polling",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout: int = 30,
        commands: Mapping[str, list[BotCommand]] | None = None,
        group_commands: Mapping[str, list[BotCommand]] | None = None,
        bot_key: str = DEFAULT_BOT,
        on_migrate: OnMigrate | None = None,
        on_undelivered: OnUndelivered | None = None,
        request: AiohttpRequest | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        files: TelegramFiles | None = None,
    ) -> None:
        self.mode = mode
        self.files = files
        self.max_body = max_body
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_timeout = poll_timeout
        self.commands = commands or {}
        self.group_commands = group_commands or {}
        self.bot_key = bot_key
        self._on_inbound = on_inbound
        self._on_migrate = on_migrate
        self._on_undelivered = on_undelivered
        self._metrics = metrics
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .request(request or send_request())
            .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=10))
            .concurrent_updates(PerUserProcessor(256))
        )
        if mode == "webhook":
            builder = builder.updater(None)
        self.application: Application = builder.build()  # type: ignore[type-arg]
        self.application.add_handler(TypeHandler(Update, self._handle))
        self.application.add_error_handler(self._on_error)

    @property
    def bot(self) -> Bot:
        """The PTB Bot (for the outbox sender)."""
        bot: Bot = self.application.bot
        return bot

    async def start(self) -> None:
        """Connect, register the command menu, then poll or set the webhook."""
        app = self.application
        await app.initialize()
        await self._set_commands()
        await app.start()
        if self.mode == "webhook":
            if self.webhook_url:
                await app.bot.set_webhook(
                    self.webhook_url,
                    secret_token=self.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                    max_connections=100,
                )
        else:
            assert app.updater is not None
            await app.bot.delete_webhook()
            await app.updater.start_polling(
                poll_interval=0.0,
                timeout=self.poll_timeout,
                allowed_updates=Update.ALL_TYPES,
            )
        log.info("telegram bot @%s started (%s), key %s", app.bot.username, self.mode, self.bot_key)

    async def stop(self) -> None:
        """Stop polling, finish the updates in hand, close connections."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        await app.bot.shutdown()  # a start that failed in getMe left the bot's connections open

    def webhook_route(self, path: str = WEBHOOK_PATH) -> Route:
        """The Starlette route Telegram posts updates to (403 without the right secret)."""
        return Route(path, self._webhook, methods=["POST"])

    async def _webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        expected = self.webhook_secret or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return Response(status_code=403)
        try:
            body = await read_body(request, self.max_body)
        except BodyTooLarge:
            log.warning("telegram webhook body over %d bytes refused", self.max_body)
            self._metrics.updates.labels("telegram", "malformed").inc()
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            return self._malformed(None, "not JSON")
        update_id = data.get("update_id") if isinstance(data, dict) else None
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:  # any body that is not an update: refuse it, keep serving
            return self._malformed(update_id, f"not an update ({exc.__class__.__name__})")
        try:
            to_inbound(update, self.bot_key)  # a malformed shape is refused before the core
        except InvalidInbound as exc:
            return self._malformed(update.update_id, str(exc))
        # Answer once handled: Telegram sends a chat's next update only after this answer, so one
        # user's messages take effect in order whichever worker receives each of them.
        await self.application.process_update(update)
        return Response()

    def _malformed(self, update_id: object, reason: str) -> Response:
        """One log line (the update's id and what is wrong, never its content), a count, 400."""
        shown = update_id if type(update_id) is int else "?"
        log.info("malformed telegram update %s refused: %s", shown, reason)
        self._metrics.updates.labels("telegram", "malformed").inc()
        return Response(status_code=400)

    async def _set_commands(self) -> None:
        """The "/" menus: ``commands`` everywhere (private chats), ``group_commands`` in group
        chats (Telegram prefers the narrower scope); per language, and Indonesian for the
        rest. A menu Telegram refuses is left out: the commands work without it."""
        await self._set_menu(self.commands, BotCommandScopeDefault())
        await self._set_menu(self.group_commands, BotCommandScopeAllGroupChats())

    async def _set_menu(
        self, commands: Mapping[str, list[BotCommand]], scope: BotCommandScope
    ) -> None:
        bot = self.application.bot
        for lang, listed in commands.items():
            with contextlib.suppress(TelegramError):
                await bot.set_my_commands(listed, scope=scope, language_code=lang)
        if "id" in commands:
            with contextlib.suppress(TelegramError):
                await bot.set_my_commands(commands["id"], scope=scope)

    async def _handle(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Translate, hand it to the seam (which runs the core, counts and times it), send the
        replies, answer a pressed button."""
        try:
            inbound = to_inbound(update, self.bot_key)
        except InvalidInbound as exc:  # polling: Telegram will not send it again; log, go on
            self._malformed(update.update_id, str(exc))
            return
        message = update.message
        if message is not None and message.migrate_to_chat_id is not None:
            if self._on_migrate is not None:  # the group became a supergroup with a new id
                await self._on_migrate(message.chat.id, message.migrate_to_chat_id)
            return
        if inbound is None:
            return
        files = self.files
        if files is not None and inbound.media and inbound.chat_kind is ChatKind.PRIVATE:

            async def download(message: Inbound) -> Inbound:
                return await files.prepare(self.application.bot, message)

            outcome = await self._on_inbound(inbound, prepare=download)
        else:
            outcome = await self._on_inbound(inbound)
        try:
            for reply in coalesce(outcome.replies, limit=TEXT_LIMIT):
                await self._send_patiently(inbound.chat_id, reply)
            if update.callback_query is not None:
                await answer_callback(update.callback_query, outcome.notice)
        except Exception as exc:  # handled and counted by the seam; only the answer failed
            log.error(
                "the answer to update %s was not delivered: %s",
                update.update_id,
                type(exc).__name__,
                exc_info=exc,
            )

    async def _send_patiently(self, chat_id: int, reply: Reply) -> None:
        """Send a direct reply call by call: wait out flood control, retry a few times what the
        outbox would retry (a 5xx, a timeout), and hand the calls still unsent to the outbox (the
        core has committed: the reply is the only news of it, often a ticket number). What the
        outbox would give up (``translate``: blocked, a bad request) is raised. No call is made
        twice."""
        parts = reply_parts(reply)
        sent = 0
        failures = 0
        for attempt in range(4 + len(parts)):
            try:
                while sent < len(parts):
                    await send_part(self.application.bot, chat_id, parts[sent], self.files)
                    sent += 1
                return
            except TelegramError as exc:
                error = translate(exc)
                if error.permanent or error.migrated_to is not None:
                    raise  # the outbox would give it up too; a migrated group moves by its update
                if error.retry_after is not None:  # flood control: wait it out, if briefly
                    self._metrics.rate_limited.labels("telegram").inc()
                    if attempt >= 3 or error.retry_after > MAX_REPLY_WAIT:
                        break
                    await asyncio.sleep(error.retry_after)
                    continue
                failures += 1  # what the outbox would retry: here a few times, then it does
                log.warning("direct reply failed (%s), attempt %d", type(exc).__name__, attempt)
                if failures >= NETWORK_TRIES:
                    break
                await asyncio.sleep(0.2 * 2**failures)
        if self._on_undelivered is None:
            raise TimedOut("direct reply not delivered")
        await self._on_undelivered(chat_id, reply if sent == 0 else rest_of(reply, parts[sent:]))
        log.info("direct reply queued in the outbox after failed attempts")

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log failures before the seam (a group's migration) without message content (it may
        hold personal data), and count them: the seam counts every update it was handed."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error(
            "handling update %s failed: %s",
            update_id,
            context.error.__class__.__name__ if context.error else "unknown",
            exc_info=context.error,
        )
        self._metrics.updates.labels("telegram", "error").inc()


class PerUserProcessor(BaseUpdateProcessor):
    """Different users' updates run concurrently; one user's updates run in arrival order."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._order = ArrivalOrder()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the coroutine in its turn among the updates of its chat and user."""
        key = _user_key(update)
        if key is None:
            await coroutine
            return
        async with self._order.turn(key):
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _user_key(update: object) -> tuple[int, int] | None:
    if not isinstance(update, Update):
        return None
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return None
    return (chat.id, user.id)


async def answer_callback(query: CallbackQuery, notice: str | None) -> None:
    """Answer a button press (Telegram shows a spinner until we do)."""
    with contextlib.suppress(TelegramError):
        await query.answer(notice[:200] if notice else None)
