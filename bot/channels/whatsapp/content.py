"""Buttons on WhatsApp: a reply's options as a Twilio Content API resource, made once.

Inside the 24-hour window a message with options can carry buttons, as content created on
Twilio's Content API (a host of its own, ``[whatsapp] content_base_url``) and sent by its SID:

- ``twilio/quick-reply``: up to 3 buttons in session (without WhatsApp's approval), each title
  at most 20 characters, all different;
- ``twilio/list-picker``: 1-10 items behind one button (``whatsapp.list_button``), each item at
  most 24 characters; a longer label (up to 72) is shortened there and shown whole as the
  item's description.

``plan_menu`` decides, purely, which one fits (None: the options go as numbered text). The
message text is the content's variable ``{{1}}``, so one content serves every message with the
same options: the cache grows with the menus, not the messages. ``ContentMenus`` creates a
content once and keeps its SID in the database by the hash of its body
(``storage.contents``), so every worker and every restart sends the same one. A body Twilio
refuses is remembered: never tried again after a 400 (it would be refused again), tried again
after ``RETRY_AFTER`` after a 5xx, a 429 or no answer. A tap comes back on the inbound webhook as
``ButtonPayload`` = the option's data, the same as Telegram's ``callback_data``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.channels.whatsapp.render import utf16_units
from handlers.i18n import Catalog
from handlers.types import Option
from storage import contents
from storage.db import Sessions
from storage.types import utcnow

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger(__name__)

CONTENT_API = "https://content.twilio.com"
QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
BODY = "{{1}}"  # the message text: the content's one variable
BODY_LIMIT = 1024  # either type's body, with the text filled in
QUICK_REPLIES = 3  # buttons of an in-session quick reply (WhatsApp's reply-button message)
TITLE_LIMIT = 20  # a quick-reply title; also the button that opens a list
ITEMS = 10
ITEM_LIMIT = 24
DESCRIPTION_LIMIT = 72
RETRY_AFTER = timedelta(minutes=10)  # a content Twilio could not create (5xx, 429, no answer)
# Twilio's answers to a message whose content it does not take: the ContentSid is unknown (the
# content was deleted there: made again next time), or the variables are not acceptable.
CONTENT_SID_UNKNOWN = 21655
CONTENT_VARIABLES_REFUSED = 21656
CONTENT_REFUSED_AT_SEND = frozenset({CONTENT_SID_UNKNOWN, CONTENT_VARIABLES_REFUSED})


@dataclass(frozen=True, slots=True)
class Menu:
    """One message's options as content: its type and definition, and the text for ``{{1}}``."""

    content_type: str
    language: str
    spec: dict[str, Any]
    text: str

    @property
    def body_hash(self) -> str:
        """What the content is found by: its definition, never the message text."""
        canonical = json.dumps(
            {"language": self.language, "types": {self.content_type: self.spec}},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def definition(self) -> dict[str, Any]:
        """The Content API's create body (JSON)."""
        short = "qr" if self.content_type == QUICK_REPLY else "list"
        return {
            "friendly_name": f"ktn_{short}_{self.body_hash[:16]}",
            "language": self.language,
            "variables": {"1": "-"},
            "types": {self.content_type: self.spec},
        }

    def variables(self) -> str:
        """``ContentVariables`` for the message: the text."""
        return json.dumps({"1": self.text}, ensure_ascii=False)


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 units, ending in "…" when cut."""
    if utf16_units(text) <= limit:
        return text
    cut = text
    while utf16_units(cut) > limit - 1:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def _usable(options: Sequence[Option]) -> bool:
    """Labels that can be shown and data that come back unchanged: no placeholders of the
    Content API's own (``{{…}}``) in either, no blank label, no repeated data."""
    datas = [o.data for o in options]
    return (
        bool(options)
        and len(set(datas)) == len(datas)
        and all(o.label.strip() for o in options)
        and not any("{{" in o.label or "{{" in o.data for o in options)
    )


def plan_menu(text: str, options: Sequence[Option], lang: str, list_button: str) -> Menu | None:
    """The content that shows these options as buttons under ``text``, or None when they do
    not fit (then they go as numbered lines): quick replies for up to 3 short, different
    labels; else a list of up to 10; the text at most 1024 characters either way."""
    body = text.strip()
    if not body or utf16_units(body) > BODY_LIMIT or not _usable(options):
        return None
    labels = [o.label.strip() for o in options]
    if (
        len(options) <= QUICK_REPLIES
        and all(utf16_units(label) <= TITLE_LIMIT for label in labels)
        and len({label.casefold() for label in labels}) == len(labels)
    ):
        actions = [
            {"type": "QUICK_REPLY", "title": label, "id": o.data}
            for label, o in zip(labels, options, strict=True)
        ]
        return Menu(QUICK_REPLY, lang, {"body": BODY, "actions": actions}, body)
    if len(options) > ITEMS or any(utf16_units(label) > DESCRIPTION_LIMIT for label in labels):
        return None
    items = []
    for label, option in zip(labels, options, strict=True):
        item: dict[str, str] = {"item": _shorten(label, ITEM_LIMIT), "id": option.data}
        if item["item"] != label:
            item["description"] = label  # the whole label, under its shortened title
        items.append(item)
    if len({item["item"].casefold() for item in items}) != len(items):
        return None  # two labels alike in their first 24 characters: numbers tell them apart
    button = _shorten(list_button.strip(), TITLE_LIMIT)
    if not button or "{{" in button:
        return None
    return Menu(LIST_PICKER, lang, {"body": BODY, "button": button, "items": items}, body)


def _request(definition: dict[str, Any]) -> Any:
    """The SDK's create request with exactly our JSON: its own model writes every field it
    knows as null (fourteen content types, each action's ``type``), ours sends what we set."""
    from twilio.rest.content.v1.content import ContentList

    class Request(ContentList.ContentCreateRequest):  # type: ignore[misc]
        def to_dict(self) -> dict[str, Any]:
            return definition

    return Request(definition)


class ContentMenus:
    """The contents for buttons: made on Twilio's Content API once, found again by the hash of
    their body in the database (every worker, every restart) and, after that, in memory."""

    def __init__(
        self,
        client: Client,
        sessions: Sessions,
        *,
        catalog: Catalog,
        clock: Callable[[], datetime] = utcnow,
        retry_after: timedelta = RETRY_AFTER,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.catalog = catalog
        self.clock = clock
        self.retry_after = retry_after
        self._known: dict[str, str] = {}  # body hash -> content SID
        self._making: dict[str, asyncio.Lock] = {}

    def plan(self, text: str, options: Sequence[Option], lang: str) -> Menu | None:
        """``plan_menu`` with the list button in the reader's language."""
        return plan_menu(text, options, lang, self.catalog.text(lang, "whatsapp.list_button"))

    async def sid_for(self, menu: Menu) -> str | None:
        """The content's SID, made now if it never was; None when Twilio refused it (the
        options then go as text): for good after a 400, for ``retry_after`` after trouble."""
        key = menu.body_hash
        if key in self._known:
            return self._known[key]
        async with self._making.setdefault(key, asyncio.Lock()):
            if key in self._known:  # made while this one waited
                return self._known[key]
            async with self.sessions() as session:
                row = await contents.find(session, key)
            if row is not None and row.content_sid:
                self._known[key] = row.content_sid
                return row.content_sid
            if row is not None and (row.retry_at is None or row.retry_at > self.clock()):
                return None  # refused: not asked again on every message
            return await self._create(menu)

    async def _create(self, menu: Menu) -> str | None:
        import aiohttp  # loaded already: the client is built on it
        from twilio.base.exceptions import TwilioRestException

        key = menu.body_hash
        try:
            created = await self.client.content.v1.contents.create_async(
                _request(menu.definition())
            )
        except TwilioRestException as exc:
            final = exc.status in (400, 422)  # the body itself: Twilio would refuse it again
            reason = f"twilio {exc.status}/{exc.code}: {exc.msg}"
            await self._refused(menu, reason, final=final)
            return None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await self._refused(menu, f"network: {exc.__class__.__name__}", final=False)
            return None
        async with self.sessions() as session:
            sid = await contents.save_sid(
                session, key, menu.content_type, str(created.sid), self.clock()
            )
            await session.commit()
        log.info("whatsapp %s content %s created", menu.content_type, sid)
        self._known[key] = sid
        return sid

    async def _refused(self, menu: Menu, reason: str, *, final: bool) -> None:
        now = self.clock()
        retry_at = None if final else now + self.retry_after
        log.warning(
            "whatsapp %s content refused (%s); options go as text%s",
            menu.content_type,
            reason,
            "" if final else f" until {retry_at:%H:%M} UTC",
        )
        async with self.sessions() as session:
            await contents.save_refusal(
                session, menu.body_hash, menu.content_type, reason, retry_at, now
            )
            await session.commit()

    async def unknown_at_twilio(self, menu: Menu, sid: str) -> None:
        """Twilio no longer knows the content (deleted there): made anew next time."""
        self._known.pop(menu.body_hash, None)
        async with self.sessions() as session:
            await contents.forget(session, menu.body_hash, sid)
            await session.commit()
