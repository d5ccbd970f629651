"""Delivering outbox rows to WhatsApp through Twilio's REST API (the dispatcher's Sender).

The real ``twilio`` client, asynchronous (``create_async``; the blocking ``create`` would stall
the event loop), pointed at ``[whatsapp] api_base_url``. Inside the 24-hour window a row goes
as free text (over 1600 characters as numbered parts), its options as buttons (``content.py``:
quick replies or a list, ``[whatsapp] buttons``) or else as numbered lines; outside it as the
Content Template configured for its kind, or not at all: the row is recorded ``needs_template``
for the admins. Buttons that cannot go (they do not fit, Twilio refuses the content) go as
numbered lines in the same send: one message either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from twilio.base.exceptions import TwilioRestException

from bot.channels.whatsapp.content import (
    CONTENT_API,
    CONTENT_REFUSED_AT_SEND,
    CONTENT_SID_UNKNOWN,
    ContentMenus,
)
from bot.channels.whatsapp.inbound import address_for
from bot.channels.whatsapp.render import (
    message_parts,
    public_media_url,
    render_text,
    template_variables,
)
from bot.delivery.dispatcher import Envelope, SendError, save_progress
from handlers.i18n import Catalog
from handlers.types import Reply
from storage import contacts
from storage.db import Sessions
from storage.models import Contact
from storage.outbox import ANSWERED_AT, FORGET
from storage.types import Channel, OutboxKind, OutboxStatus, utcnow

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger(__name__)

# The URL Twilio fetches a reply's file or document from (a signed link to the media store),
# or None when it has none that WhatsApp can carry.
# ``owner_id``: the person a document about themselves is for (``MediaBlob.owner_id``).
MediaUrl = Callable[[Reply, int | None], Awaitable[str | None]]
WINDOW = timedelta(hours=24)
WINDOW_MARGIN = timedelta(minutes=10)  # a message queued at 23:59 may arrive after 24:00
# A kind without its own template borrows this one's (an escalation is an alert, too).
TEMPLATE_FALLBACK = {
    "escalation": "alert",
    "patrol": "reminder",
    "recap": "reminder",
    "problem": "reminder",  # an action's reminder to its owner, a problem's news to reporters
}
NUMBERED_KINDS = frozenset({OutboxKind.REPLY.value, OutboxKind.PATROL.value})
OPT_OUT_KINDS = frozenset({OutboxKind.BROADCAST.value})
RATE_LIMITED = frozenset({20429, 63018})
BLOCKED = frozenset({21610})  # the recipient unsubscribed (STOP)
AUTH_FAILED = frozenset({20003})
# An address, or 7+ digits (Twilio's error codes have 5): what could be someone's number.
PHONE_LIKE = re.compile(r"whatsapp:\+?\d+|\+?\d[\d ()\-]{5,}\d")
PARTS_KEY = "wa_parts_sent"  # payload: how many parts of a split message went out already
MEDIUM_KEY = "wa_medium_sent"  # payload: the medium went alone before a buttons message


def make_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str,
    timeout: float,
    content_base_url: str = CONTENT_API,
) -> Client:
    """The twilio REST client (see ``bot.twilio_client``; imported here, on first use: twilio's
    REST client and aiohttp cost ~14 MB, which a Telegram-only deployment never needs)."""
    from bot.channels.whatsapp.client import make_client as make

    return make(account_sid, auth_token, api_base_url, timeout, content_base_url)


class SentLog:
    """SIDs this process sent recently, with their outbox row: a status callback can arrive
    before the dispatcher has recorded the SID (see ``StatusBook``)."""

    def __init__(self, keep_seconds: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._sids: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def add(self, sid: str, outbox_id: int) -> None:
        """Remember one SID."""
        now = self.clock()
        self._sids[sid] = (outbox_id, now)
        while self._sids:
            first = next(iter(self._sids.values()))
            if now - first[1] <= self.keep_seconds:
                break
            self._sids.popitem(last=False)

    def row_of(self, sid: str) -> int | None:
        """The outbox row a recent SID belongs to, or None."""
        found = self._sids.get(sid)
        if found is None or self.clock() - found[1] > self.keep_seconds:
            return None
        return found[0]


class WhatsAppSender:
    """Sends one outbox envelope through Twilio; translates Twilio's answers for the dispatcher."""

    def __init__(
        self,
        client: Client,
        sessions: Sessions,
        *,
        from_number: str,
        catalog: Catalog,
        default_language: str,
        templates: Mapping[str, str],
        status_callback: str | None,
        messages_per_second: float,
        sent_log: SentLog | None = None,
        clock: Callable[[], datetime] = utcnow,
        menus: ContentMenus | None = None,
        media_url: MediaUrl | None = None,
    ) -> None:
        self.client = client
        self.menus = menus  # None: options always go as numbered lines
        self.media_url = media_url  # a stored file or document as a URL Twilio can fetch
        self.sessions = sessions
        self.from_address = "whatsapp:" + from_number
        self.catalog = catalog
        self.default_language = default_language
        self.templates = dict(templates)
        self.status_callback = status_callback
        self.part_gap = 1.0 / messages_per_second
        self.sent_log = sent_log or SentLog()
        self.clock = clock
        self.private_prefixes = (str(client.api.base_url), "https://api.twilio.com")

    async def close(self) -> None:
        """Close the aiohttp session (on shutdown, after the dispatcher stopped)."""
        await self.client.http_client.close()

    async def send(self, envelope: Envelope) -> str | None:
        """Send the row: free text inside the window, a template outside it. Returns the SID."""
        if envelope.kind == OutboxKind.ALERT_EDIT.value:
            raise SendError("WhatsApp messages cannot be edited", permanent=True)
        if envelope.kind == OutboxKind.MEDIA_DELETE.value:
            await self._delete_media(str(envelope.payload.get("url") or ""))
            return None
        reply = Reply.from_json(envelope.payload["reply"])
        contact = await self._contact(envelope)
        if (
            envelope.kind in OPT_OUT_KINDS
            and not envelope.payload.get("duty")  # a staff member's copy (handlers.broadcast)
            and contact is not None
            and contact.opted_out_at
        ):
            raise SendError("the recipient opted out of broadcasts (STOP)", permanent=True)
        if not self.in_window(contact) and not self._answers_now(envelope):
            return await self._send_template(envelope, reply)
        lang = str(envelope.payload.get("lang") or (contact.language if contact else None) or "")
        lang = lang or self.default_language
        if self.media_url is not None:
            owner = envelope.contact_id if envelope.payload.get(FORGET) else None
            media = await self.media_url(reply, owner)
        else:
            media = public_media_url(reply.media, self.private_prefixes)
        if reply.options and self.menus is not None:
            if media:
                # A buttons message carries no medium: the photo goes first on its own, then the
                # buttons (an officer's alert with the resident's photo keeps its taps).
                if not envelope.payload.get(MEDIUM_KEY):
                    await self._create(envelope, media_url=[media])
                    await save_progress(self.sessions, envelope, **{MEDIUM_KEY: True})
                media = None
            tapped = await self._send_buttons(envelope, reply, lang)
            if tapped is not None:
                self.sent_log.add(tapped, envelope.id)
                return tapped
        # Numbers typed back name a conversation's own options (handlers.options) and tonight's
        # patrol message's (handlers.patrol answers "1" to it); on anyone else's message (an
        # alert) a number would answer the reader's own last menu instead, so none is shown.
        text = render_text(
            reply, self.catalog, lang, numbered_options=envelope.kind in NUMBERED_KINDS
        )
        parts = message_parts(text) or ([""] if media else [])
        if not parts:
            raise SendError("nothing to send: empty text", permanent=True)
        done = int(envelope.payload.get(PARTS_KEY) or 0)
        sid: str | None = None
        for index in range(done, len(parts)):
            if index > done:
                await asyncio.sleep(self.part_gap)  # the dispatcher paced the row, not its parts
            sid = await self._create(
                envelope, body=parts[index], media_url=[media] if media and index == 0 else None
            )
            if index < len(parts) - 1:
                await save_progress(self.sessions, envelope, **{PARTS_KEY: index + 1})
        assert sid is not None
        self.sent_log.add(sid, envelope.id)
        return sid

    async def _send_buttons(self, envelope: Envelope, reply: Reply, lang: str) -> str | None:
        """The row as one message with its options as buttons; None when they go as text
        instead: they do not fit, Twilio refused the content, or the message's variables."""
        assert self.menus is not None
        body = render_text(reply, self.catalog, lang, numbered_options=False)
        menu = self.menus.plan(body, reply.options, lang)
        if menu is None:
            return None
        content_sid = await self.menus.sid_for(menu)
        if content_sid is None:
            return None
        try:
            return await self._create(
                envelope, content_sid=content_sid, content_variables=menu.variables()
            )
        except SendError as exc:
            refusal = exc.__cause__
            if not isinstance(refusal, TwilioRestException):
                raise
            if refusal.code not in CONTENT_REFUSED_AT_SEND:
                raise
            log.warning("outbox row %d: buttons refused (%s); sent as text", envelope.id, exc)
            if refusal.code == CONTENT_SID_UNKNOWN:
                await self.menus.unknown_at_twilio(menu, content_sid)
            return None

    def in_window(self, contact: Contact | None) -> bool:
        """Whether the contact wrote to us recently enough for free text."""
        last = contact.last_inbound_at if contact is not None else None
        return last is not None and self.clock() - last < WINDOW - WINDOW_MARGIN

    def _answers_now(self, envelope: Envelope) -> bool:
        """A reply to someone no longer a contact (erased) answers a message that opened the
        window when it came (``storage.outbox.ANSWERED_AT``)."""
        raw = envelope.payload.get(ANSWERED_AT)
        try:
            at = datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            return False
        return at is not None and self.clock() - at < WINDOW - WINDOW_MARGIN

    def template_for(self, kind: str) -> str | None:
        """The Content Template SID configured for this kind of message, if any."""
        return self.templates.get(kind) or self.templates.get(TEMPLATE_FALLBACK.get(kind, ""))

    async def _send_template(self, envelope: Envelope, reply: Reply) -> str:
        content_sid = self.template_for(envelope.kind)
        if content_sid is None:
            raise SendError(
                f"outside the 24-hour window and no [whatsapp] templates.{envelope.kind} "
                "configured: not sent",
                final_status=OutboxStatus.NEEDS_TEMPLATE,
            )
        variables = template_variables(reply.text, envelope.payload)
        sid = await self._create(
            envelope, content_sid=content_sid, content_variables=json.dumps(variables)
        )
        self.sent_log.add(sid, envelope.id)
        return sid

    async def _contact(self, envelope: Envelope) -> Contact | None:
        async with self.sessions() as session:
            return await contacts.recipient(
                session, envelope.contact_id, Channel.WHATSAPP.value, envelope.chat_id
            )

    async def _delete_media(self, url: str) -> None:
        """Delete a file Twilio keeps (an erased sender's photo): done when Twilio answers 204,
        or 404 when it is gone already (``[whatsapp] delete_media_at_twilio`` deleted it after
        the download). Our credentials go to Twilio's API only."""
        if not url.startswith(self.private_prefixes):
            raise SendError("media URL outside the Twilio API", permanent=True)
        import aiohttp  # loaded already: the client is built on it

        auth = (str(self.client.username), str(self.client.password))
        try:
            response = await self.client.http_client.request("DELETE", url, auth=auth)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SendError(f"network: {exc.__class__.__name__}") from exc
        status = int(response.status_code)
        if status in (204, 404):
            return
        if status == 429:
            raise SendError("twilio 429 deleting media", retry_after=1.0)
        permanent = 400 <= status < 500 and status not in (401, 408)
        raise SendError(f"twilio {status} deleting media", permanent=permanent)

    async def _create(
        self,
        envelope: Envelope,
        *,
        body: str | None = None,
        media_url: list[str] | None = None,
        content_sid: str | None = None,
        content_variables: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {"to": address_for(envelope.chat_id), "from_": self.from_address}
        if body:
            kwargs["body"] = body
        if media_url:
            kwargs["media_url"] = media_url
        if content_sid:
            kwargs["content_sid"] = content_sid
            kwargs["content_variables"] = content_variables
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        import aiohttp  # loaded already: the client is built on it

        try:
            message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            raise translate(exc) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # A timed-out POST may still have been accepted: at-least-once, like every channel.
            raise SendError(f"network: {exc.__class__.__name__}: {exc}") from exc
        return str(message.sid)


def without_numbers(text: str) -> str:
    """Twilio's error text with phone numbers blanked: the reason is logged and listed."""
    return PHONE_LIKE.sub("<nomor>", text)


def translate(exc: TwilioRestException) -> SendError:
    """What the dispatcher should do about a Twilio REST error."""
    code = exc.code if isinstance(exc.code, int) else None
    reason = f"twilio {exc.status}/{code}: {without_numbers(str(exc.msg))}"
    if exc.status == 429 or code in RATE_LIMITED:
        return SendError(reason, retry_after=1.0)
    if code in BLOCKED:
        return SendError(reason, permanent=True, blocked=True)
    if exc.status >= 500 or code in AUTH_FAILED or exc.status in (401, 408):
        return SendError(reason)  # Twilio's trouble or our credentials: retried with backoff
    return SendError(reason, permanent=True)  # 21211 invalid number, 63003, 21617 ... : final
