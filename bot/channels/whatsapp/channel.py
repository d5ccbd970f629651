"""WhatsApp through Twilio in the process: signed webhooks in, outbox rows out.

``POST /whatsapp/inbound``: the signature is checked against ``[whatsapp] public_url`` + path
(the URL Twilio called, not the one behind a proxy) before anything is recorded; then, one
message per user at a time, the message goes through the one inbound seam (``bot.inbound``),
which drops a retried MessageSid, lets this channel download the media into the media store
(``bot.media``: Basic auth, streamed with a cap per kind, since Twilio declares no size), runs
the core and writes the replies as outbox rows in the same transaction (``REPLIES``: WhatsApp's
replies are queued). The answer is an empty ``<Response/>``: every WhatsApp message goes out
through the outbox dispatcher (rate limit, retries, the 24-hour window, splitting in one place).
Stored media are deleted at Twilio once the transaction is committed. A message the core could
not process at all is answered with the seam's apology as TwiML (no database needed).

``GET /media/<token>``: the signed links Twilio fetches the files the bot sends from
(``bot.media.links``; mounted by the app).

``POST /whatsapp/status``: signed delivery status callbacks (see ``bot.whatsapp_status``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.ordering import ArrivalOrder
from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.channels.whatsapp.content import ContentMenus
from bot.channels.whatsapp.inbound import FormError, to_inbound
from bot.channels.whatsapp.media import MediaUrls
from bot.channels.whatsapp.render import BODY_LIMIT, utf16_units
from bot.channels.whatsapp.sender import SentLog, WhatsAppSender, make_client
from bot.channels.whatsapp.status import StatusBook
from bot.channels.whatsapp.statuses import TWILIO_STATUS
from bot.config import DEFAULT_MAX_BODY
from bot.inbound import OnInbound, QueuedReplies
from bot.media.intake import Limits, take_media
from bot.media.library import MediaLibrary
from bot.media.links import MediaLinks
from bot.metrics import Metrics
from bot.web.app import BodyTooLarge, read_body
from handlers.config import CoreConfig
from handlers.types import Inbound, Media
from storage.db import Sessions
from storage.types import utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
INBOUND_PATH = "/whatsapp/inbound"
STATUS_PATH = "/whatsapp/status"
EMPTY_TWIML = str(MessagingResponse())
TWILIO_API = "https://api.twilio.com"
MEDIA_BUDGET_SECONDS = 10.0  # per medium, all at once: Twilio waits 15 s for our answer
MAX_FORM_FIELDS = 200  # an inbound message with 10 media has ~60; a status callback ~15


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    """What the channel needs from the settings (checked by ``bot.config.whatsapp_problems``)."""

    account_sid: str
    auth_token: str
    from_number: str
    public_url: str
    api_base_url: str
    buttons: bool  # options as buttons inside the window (content.py); else numbered text
    content_base_url: str
    delete_media_at_twilio: bool
    request_timeout: float
    messages_per_second: float
    templates: dict[str, str]


# WhatsApp's replies are outbox rows written with the change they answer (see bot.inbound).
REPLIES = QueuedReplies(limit=BODY_LIMIT, measure=utf16_units)


class WhatsAppChannel:
    """The webhooks, the media store and the sender of one Twilio WhatsApp number; messages go
    to the core through ``on_inbound`` (``bot.inbound.make_on_inbound`` with ``REPLIES``)."""

    def __init__(
        self,
        config: WhatsAppConfig,
        sessions: Sessions,
        core: CoreConfig,
        *,
        on_inbound: OnInbound,
        metrics: Metrics,
        clock: Callable[[], datetime] = utcnow,
        max_body: int = DEFAULT_MAX_BODY,
        media: MediaLibrary | None = None,
        links: MediaLinks | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self.media = media  # the store inbound files go to (None: they are not taken)
        self.links = links  # signs the URLs Twilio fetches outbound files from
        self.limits = limits or Limits.of(WHATSAPP)
        self.max_body = max_body
        self.sessions = sessions
        self.core = core
        self.on_inbound = on_inbound
        self.metrics = metrics
        self.clock = clock
        self.public_url = config.public_url.rstrip("/")
        self.validator = RequestValidator(config.auth_token)
        self.sent_log = SentLog()
        self.statuses = StatusBook(sessions, self.sent_log, clock=clock)
        self._order = ArrivalOrder()  # one sender's messages in arrival order
        self._background: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._sender: WhatsAppSender | None = None
        # Our credentials go only to Twilio: the configured API base, or Twilio's own host.
        self._media_hosts = (config.api_base_url.rstrip("/") + "/", TWILIO_API + "/")

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the REST client (aiohttp) and the media client (httpx)."""
        cfg = self.config
        client = make_client(
            cfg.account_sid,
            cfg.auth_token,
            cfg.api_base_url,
            cfg.request_timeout,
            cfg.content_base_url,
        )
        menus = (
            ContentMenus(client, self.sessions, catalog=self.core.catalog, clock=self.clock)
            if cfg.buttons
            else None
        )
        self._sender = WhatsAppSender(
            client,
            self.sessions,
            from_number=cfg.from_number,
            catalog=self.core.catalog,
            default_language=self.core.default_language,
            templates=cfg.templates,
            status_callback=self.public_url + STATUS_PATH,
            messages_per_second=cfg.messages_per_second,
            sent_log=self.sent_log,
            clock=self.clock,
            menus=menus,
            media_url=(
                MediaUrls(self.media, self.links, self._media_hosts)
                if self.media is not None and self.links is not None
                else None
            ),
        )
        self._http = httpx.AsyncClient(
            auth=(cfg.account_sid, cfg.auth_token),
            timeout=cfg.request_timeout,
            follow_redirects=True,
            trust_env=False,
        )
        log.info("whatsapp channel started via %s", cfg.api_base_url)

    @property
    def sender(self) -> WhatsAppSender:
        """The outbox sender for channel "whatsapp" (after ``start``)."""
        if self._sender is None:
            raise RuntimeError("WhatsAppChannel.start() first")
        return self._sender

    async def close(self) -> None:
        """Finish media deletions, drop held statuses, close both HTTP clients. Call it after
        the dispatcher has stopped: it still sends through this channel until then."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self.statuses.close()
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def routes(self) -> list[Route]:
        """The two webhooks Twilio calls."""
        return [
            Route(INBOUND_PATH, self._inbound, methods=["POST"]),
            Route(STATUS_PATH, self._status, methods=["POST"]),
        ]

    # ----------------------------------------------------------------- webhooks

    async def _signed_form(self, request: Request) -> dict[str, str] | None:
        """The form if X-Twilio-Signature matches the public URL Twilio called, else None.

        Nothing is parsed before the signature is checked but what checking it needs: the body
        read to at most ``max_body`` bytes and split into at most ``MAX_FORM_FIELDS`` pairs. The
        signature covers the whole body, so a larger body, or more fields than Twilio ever sends,
        cannot be verified: it is refused like any forgery (403), without reading the rest.
        """
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return None
        try:
            body = await read_body(request, self.max_body)
            pairs = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except BodyTooLarge:
            log.warning("whatsapp webhook body over %d bytes: not verifiable", self.max_body)
            return None
        except ValueError:  # more fields than Twilio sends, or not UTF-8
            log.warning("whatsapp webhook body not a Twilio form: not verifiable")
            return None
        form = dict(pairs)
        url = self.public_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        if not self.validator.validate(url, form, signature):
            return None
        return form

    async def _inbound(self, request: Request) -> Response:
        form = await self._signed_form(request)
        if form is None:
            log.warning("whatsapp webhook with a missing or wrong signature refused")
            self.metrics.updates.labels("whatsapp", "refused").inc()
            return Response(status_code=403)
        try:
            inbound = to_inbound(form, self.clock())
        except FormError as exc:
            log.info("malformed whatsapp webhook refused: %s", exc)
            self.metrics.updates.labels("whatsapp", "malformed").inc()
            return Response(status_code=400)
        stored: list[str] = []  # the Twilio URLs of the media now in the store

        async def store_media(inbound: Inbound) -> Inbound:
            """Download the media (all at once: Twilio waits 15 s for the whole answer)."""
            prepared = await self._store_media(inbound)
            stored.extend(
                old.ref
                for old, new in zip(inbound.media, prepared.media, strict=True)
                if new.stored and new.ref != old.ref
            )
            return prepared

        async with self._order.turn(inbound.user_id):
            outcome = await self.on_inbound(inbound, prepare=store_media)
        if outcome.failed:
            # Nothing was recorded, and Twilio does not retry an inbound message: the apology
            # travels in the answer itself (TwiML, no database needed), so the resident knows
            # to send it again. Twilio's copy of the media stays.
            sorry = MessagingResponse()
            for reply in outcome.replies:
                sorry.message(reply.text)
            return Response(str(sorry), media_type="application/xml")
        if stored and not outcome.duplicate and self.config.delete_media_at_twilio:
            # another process got there first on a duplicate: keep Twilio's copy alone
            self._in_background(self._delete_at_twilio(stored))
        return Response(EMPTY_TWIML, media_type="application/xml")

    async def _status(self, request: Request) -> Response:
        form = await self._signed_form(request)
        if form is None:
            log.warning("whatsapp status callback with a missing or wrong signature refused")
            return Response(status_code=403)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        raw_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not raw_status:
            return Response(status_code=400)
        status = TWILIO_STATUS.get(raw_status)
        if status is not None:
            result = await self.statuses.record(sid, status, form.get("ErrorCode"))
            log.debug("status %s for %s: %s", raw_status, sid, result.value)
        return Response(status_code=204)

    # ----------------------------------------------------------------- one message

    async def _store_media(self, inbound: Inbound) -> Inbound:
        """The message with its media in the store, or marked with why not (too large, a kind
        not accepted, not fetched within ``MEDIA_BUDGET_SECONDS``)."""
        if not inbound.media or self.media is None:
            return inbound
        return await take_media(
            inbound,
            self.media,
            self.limits,
            self._fetch,
            seconds=MEDIA_BUDGET_SECONDS,
            keep_origin=True,  # Twilio keeps a copy: erasing the sender deletes it there too
        )

    async def _fetch(self, item: Media, limit: int) -> AsyncIterator[bytes]:
        """A Twilio media URL's bytes, as they come (our credentials go to Twilio only)."""
        if self._http is None or not item.ref.startswith(self._media_hosts):
            log.warning("media URL outside the Twilio API not fetched")
            raise ValueError("media URL outside the Twilio API")
        return self._chunks(self._http, item.ref)

    @staticmethod
    async def _chunks(http: httpx.AsyncClient, url: str) -> AsyncIterator[bytes]:
        async with http.stream("GET", url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                yield chunk

    async def _delete_at_twilio(self, stored: list[str]) -> None:
        """Delete media at Twilio once our copy is committed with the message."""
        if self._http is None:
            return
        for url in stored:
            try:
                response = await self._http.delete(url)
                if response.status_code not in (204, 404):
                    log.warning("deleting media at Twilio answered %d", response.status_code)
            except httpx.HTTPError as exc:
                log.warning("deleting media at Twilio failed: %s", exc)

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name="whatsapp-media-delete")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
