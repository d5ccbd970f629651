"""The sandbox page's WhatsApp side: what a WhatsApp user does, and what their phone shows.

A user's action becomes the webhook form Twilio would post (``TwilioFake.inbound_*``), signed
with the account's auth token and POSTed to the running bot's ``/whatsapp/inbound``: the real
channel checks the signature, downloads the photo from the fake's media URL, and answers through
the real ``twilio`` client, which sends to the fake. The page reads one number's chat from
``GET /_wa/chat``: the user's own messages and every message the fake accepted for them (text,
media, quick replies, a list picker), in order.

Routes (JSON in and out; ``number`` is E.164, e.g. ``+6281200000010``)::

    GET  /_wa/chat?number=&after=N&timeout=25  -> {"items": [...], "last_id"}: long-polls until
         an item with id > N exists for the number; ids start at 1 and only grow
    POST /_wa/text      {"number", "text"}
    POST /_wa/location  {"number", "latitude", "longitude"}
    POST /_wa/photo     multipart number, caption?, file photo
    POST /_wa/tap       {"number", "sid", "id"}: a quick reply or a list item of message ``sid``
    GET  /_wa/media/<key>  the bytes of a photo in the chat (the user's, or one the bot sent,
         fetched from its link as Twilio fetches it)

An item: ``{"id", "dir": "in"|"out", "at", "sid", "body", "media": [path], "location"?,
"buttons": [{"title", "id", "description"}], "list_button"?}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.twilio_fake.fake import FakeMessage, TwilioFake, wa_address

MAX_WAIT = 25.0
MAX_PHOTO = 5 * 1_048_576  # WhatsApp's image limit
TWIML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.DOTALL)
NO_CACHE = {"Cache-Control": "no-cache"}


class SimError(Exception):
    """A request the page should not have made; answered 400 with the reason."""


@dataclass
class ChatItem:
    """One message in a WhatsApp chat, as the user's phone shows it."""

    id: int
    number: str
    dir: str  # "in": the user wrote it; "out": the bot sent it
    at: float
    sid: str
    body: str
    media: list[str] = field(default_factory=list)
    location: tuple[float, float] | None = None
    buttons: list[dict[str, str | None]] = field(default_factory=list)
    list_button: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The item for the page."""
        return {
            "id": self.id,
            "dir": self.dir,
            "at": self.at,
            "sid": self.sid,
            "body": self.body,
            "media": self.media,
            "location": list(self.location) if self.location else None,
            "buttons": self.buttons,
            "list_button": self.list_button,
        }


@dataclass
class MediaCopy:
    """A photo shown in a chat: the user's bytes, or the link the bot sent (fetched once)."""

    content_type: str = "application/octet-stream"
    data: bytes | None = None
    url: str | None = None


class WhatsAppSim:
    """WhatsApp users on the page, posting to the bot at ``webhook_url`` through ``fake``."""

    def __init__(self, fake: TwilioFake, webhook_url: str, names: Mapping[str, str]) -> None:
        self.fake = fake
        self.webhook_url = webhook_url
        self.names = {wa_address(number): name for number, name in names.items()}
        self.items: list[ChatItem] = []
        self.files: dict[str, MediaCopy] = {}
        self._seen = 0  # fake.messages already in items
        self._closing = asyncio.Event()

    def routes(self) -> list[Route]:
        """The page's ``/_wa/`` API."""
        return [
            Route("/_wa/chat", self._chat, methods=["GET"]),
            Route("/_wa/text", self._text, methods=["POST"]),
            Route("/_wa/location", self._location, methods=["POST"]),
            Route("/_wa/photo", self._photo, methods=["POST"]),
            Route("/_wa/tap", self._tap, methods=["POST"]),
            Route("/_wa/media/{key}", self._media, methods=["GET"]),
        ]

    def close(self) -> None:
        """End the page's long polls (the sandbox is stopping)."""
        self._closing.set()

    # ----------------------------------------------------------------- the chat

    def sync(self) -> None:
        """Take in the messages the fake accepted since the last look."""
        for msg in self.fake.messages[self._seen :]:
            self._add_out(msg)
        self._seen = len(self.fake.messages)

    def chat(self, number: str, after: int = 0) -> list[ChatItem]:
        """One number's items with an id above ``after``."""
        self.sync()
        number = wa_address(number).removeprefix("whatsapp:")
        return [i for i in self.items if i.number == number and i.id > after]

    def _add_out(self, msg: FakeMessage) -> None:
        """A message the bot sent, with its photos (by link) and its buttons."""
        media = []
        for n, url in enumerate(msg.media_urls):
            key = f"{msg.sid}-{n}"
            self.files[key] = MediaCopy(url=url)
            media.append(f"/_wa/media/{key}")
        self._append(
            ChatItem(
                id=0,
                number=msg.to.removeprefix("whatsapp:"),
                dir="out",
                at=msg.date_created,
                sid=msg.sid,
                body=msg.body,
                media=media,
                buttons=[
                    {"title": b.title, "id": b.id, "description": b.description}
                    for b in msg.buttons
                ],
                list_button=msg.list_button,
            )
        )

    def _append(self, item: ChatItem) -> ChatItem:
        """Give the item the next id and keep it."""
        item.id = len(self.items) + 1
        self.items.append(item)
        return item

    async def _chat(self, request: Request) -> Response:
        """GET /_wa/chat: long-poll one number's new items."""
        try:
            number = self._number(request.query_params.get("number"))
            after = int(request.query_params.get("after", "0"))
            timeout = min(float(request.query_params.get("timeout", "0")), MAX_WAIT)
        except (SimError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        deadline = time.monotonic() + timeout
        items = self.chat(number, after)
        while not items and not self._closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._wait(left)
            items = self.chat(number, after)
        body = {"items": [i.to_json() for i in items], "last_id": len(self.items)}
        return JSONResponse(body, headers=NO_CACHE)

    async def _wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until the fake's records change, the sandbox stops, or the timeout."""
        waits = {
            asyncio.ensure_future(self.fake.wait_change(timeout)),
            asyncio.ensure_future(self._closing.wait()),
        }
        _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # ----------------------------------------------------------------- the user's actions

    async def _text(self, request: Request) -> Response:
        """POST /_wa/text: the user types a message."""
        return await self._act(request, self._text_form)

    async def _location(self, request: Request) -> Response:
        """POST /_wa/location: the user shares a pin."""
        return await self._act(request, self._location_form)

    async def _tap(self, request: Request) -> Response:
        """POST /_wa/tap: the user taps a quick reply or picks a list item."""
        return await self._act(request, self._tap_form)

    async def _photo(self, request: Request) -> Response:
        """POST /_wa/photo (multipart): the user sends a photo, with a caption or not."""
        try:
            async with request.form(max_files=1, max_fields=4) as form:
                number = self._number(form.get("number"))
                caption = str(form.get("caption") or "")
                upload = form.get("photo")
                if not isinstance(upload, UploadFile):
                    raise SimError("no photo")
                data = await upload.read(MAX_PHOTO + 1)
                content_type = upload.content_type or "image/jpeg"
        except SimError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if len(data) > MAX_PHOTO:
            return JSONResponse({"error": "the photo is over 5 MB"}, status_code=400)
        if not content_type.startswith("image/"):
            return JSONResponse({"error": "not an image"}, status_code=400)
        self.sync()
        form_ = self.fake.inbound_media(
            number, data, content_type, caption, profile_name=self.names[wa_address(number)]
        )
        key = f"{form_['MessageSid']}-0"
        self.files[key] = MediaCopy(content_type, data)
        item = self._mine(number, form_, media=[f"/_wa/media/{key}"])
        return await self._post(form_, item)

    async def _act(self, request: Request, build: Any) -> Response:
        """Read the JSON, build the webhook form, post it."""
        try:
            payload = await request.json()
            if not isinstance(payload, dict):
                raise SimError("a JSON object is expected")
            number = self._number(payload.get("number"))
            self.sync()
            form, extra = build(number, payload)
        except (SimError, ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return await self._post(form, self._mine(number, form, **extra))

    def _text_form(
        self, number: str, payload: dict[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """A text message's form."""
        text = str(payload.get("text") or "").strip()
        if not text:
            raise SimError("empty message")
        return self.fake.inbound_text(number, text, self.names[wa_address(number)]), {}

    def _location_form(
        self, number: str, payload: dict[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """A shared pin's form."""
        lat, lon = float(payload["latitude"]), float(payload["longitude"])
        name = self.names[wa_address(number)]
        form = self.fake.inbound_location(number, lat, lon, profile_name=name)
        return form, {"location": (lat, lon)}

    def _tap_form(
        self, number: str, payload: dict[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """A tap's form: ButtonPayload the button's id, ButtonText (and Body) its title."""
        msg = self.fake.message(str(payload["sid"]))
        if msg.to != wa_address(number):
            raise SimError("that message was not sent to this number")
        wanted = str(payload["id"])
        button = next((b for b in msg.buttons if b.id == wanted), None)
        if button is None:
            raise SimError(f"message {msg.sid} has no button {wanted!r}")
        form = self.fake.inbound_button(
            number,
            button.id,
            button.title,
            message_type="interactive" if msg.list_button is not None else "button",
            replied_to_sid=msg.sid,
            profile_name=self.names[wa_address(number)],
            to=msg.from_,
        )
        return form, {}

    def _number(self, raw: object) -> str:
        """A number of the page's cast, as E.164."""
        if not isinstance(raw, str) or not raw:
            raise SimError("number is required")
        try:
            address = wa_address(raw)
        except ValueError as exc:
            raise SimError(str(exc)) from None
        if address not in self.names:
            raise SimError(f"{raw} is not one of the sandbox's WhatsApp users")
        return address.removeprefix("whatsapp:")

    def _mine(
        self,
        number: str,
        form: Mapping[str, str],
        *,
        media: list[str] | None = None,
        location: tuple[float, float] | None = None,
    ) -> ChatItem:
        """The user's own message in their chat."""
        return self._append(
            ChatItem(
                id=0,
                number=number,
                dir="in",
                at=time.time(),
                sid=form["MessageSid"],
                body=form.get("Body", ""),
                media=media or [],
                location=location,
            )
        )

    async def _post(self, form: Mapping[str, str], item: ChatItem) -> Response:
        """Post the signed webhook to the bot, as Twilio does; TwiML's message is a reply."""
        await self.fake.changed()
        try:
            response = await self.fake.post_inbound(self.webhook_url, form)
        except Exception as exc:
            return JSONResponse({"error": f"the bot did not answer: {exc!r}"}, status_code=502)
        for text in TWIML_MESSAGE.findall(response.text):
            self._append(
                ChatItem(0, item.number, "out", time.time(), "twiml", html.unescape(text.strip()))
            )
        await self.fake.changed()
        return JSONResponse({"id": item.id, "status": response.status_code})

    # ----------------------------------------------------------------- photos

    async def _media(self, request: Request) -> Response:
        """GET /_wa/media/<key>: a chat's photo; the bot's are fetched from their link once."""
        copy = self.files.get(request.path_params["key"])
        if copy is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        if copy.data is None and copy.url is not None:
            with contextlib.suppress(Exception):
                fetched = await self.fake.http_client().get(copy.url)
                if fetched.status_code == 200:
                    copy.data = fetched.content
                    copy.content_type = fetched.headers.get("content-type", copy.content_type)
        if copy.data is None:
            return JSONResponse({"error": "the link no longer answers"}, status_code=404)
        return Response(copy.data, media_type=copy.content_type, headers=NO_CACHE)
