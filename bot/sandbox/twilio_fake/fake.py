"""A local fake of Twilio's Messaging REST API for WhatsApp, plus a simulated WhatsApp user.

The REST side is a Starlette app that the real ``twilio`` client can talk to over HTTP
(``client.api.base_url = base_url``, and ``client.content.base_url`` for the Content API, served
on the same port). The simulation side builds and signs inbound webhooks exactly as Twilio sends
them, and taps the buttons of a message it got. Used by the tests, the benchmarks and the
sandbox (which mounts ``app`` beside its page).

Twilio behaviours modelled here: Basic auth with account SID + auth token;
error JSON ``{"code", "message", "more_info", "status"}``; ``whatsapp:+E.164`` addresses; Body
<= 1600 characters; free-form messages outside the 24 h window are accepted (201) but end
``undelivered`` with error 63016; Content templates are delivered regardless; status callbacks
are form POSTs signed with ``X-Twilio-Signature``; media needs Basic auth and can be deleted.

The Content API (``POST /v1/Content`` as JSON, ``GET /v1/Content/{sid}``) holds in-session
content, none of it approved by WhatsApp, and enforces what Twilio and WhatsApp enforce for it:
a ``twilio/quick-reply`` has a body of at most 1024 characters and 1-3 actions (three is the
in-session limit), each title 1-20 characters and all different, each id at most 256; a
``twilio/list-picker`` has a body, a ``button`` of 1-20 characters and 1-10 items, each item
1-24 characters with a unique id of at most 200 and an optional description of at most 72.
Anything else is answered 400 with Twilio's error JSON (the Content API's code is its status).
A message sent with such a content shows its body with the variables filled in and its buttons
(``FakeMessage.shown``); like free text it is for the 24-hour window only (else 63016), and a
filled-in body over 1024 characters ends ``failed`` with 63005 (WhatsApp refuses it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import random
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal, cast

import httpx
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from bot.web.serving import serve_asgi

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "fa4e" * 8
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"  # noqa: S105 - the fake's own token, not a secret
DEFAULT_SENDER = "whatsapp:+14155238886"
WINDOW_SECONDS = 24 * 3600
MAX_BODY = 1600
MAX_MEDIA = 10
WA_ADDRESS = re.compile(r"^whatsapp:\+[1-9][0-9]{6,14}$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TERMINAL = frozenset({"delivered", "read", "undelivered", "failed"})

# Twilio error codes used by the fake.
ERR_AUTH = 20003  # "Authenticate" (401)
ERR_NOT_FOUND = 20404
ERR_TOO_MANY = 20429
ERR_INTERNAL = 20500
ERR_UNAVAILABLE = 20503
ERR_INVALID_TO = 21211
ERR_INVALID_FROM = 21212
ERR_FROM_REQUIRED = 21603
ERR_TO_REQUIRED = 21604
ERR_BODY_TOO_LONG = 21617
ERR_NO_CONTENT = 21619  # "A text message body or media url must be specified."
ERR_MEDIA_URL = 21620
ERR_TOO_MANY_MEDIA = 21623
ERR_CONTENT_SID_REQUIRED = 21654  # ContentVariables without ContentSid
# Twilio's error catalogue: 21655 "The ContentSid is Invalid" (unknown template) and
# 21656 "The ContentVariables Parameter is invalid" (not a JSON object of strings).
ERR_CONTENT_SID = 21655
ERR_CONTENT_VARIABLES = 21656
ERR_NO_CHANNEL = 63007  # "Twilio could not find a Channel with the specified 'From' address"
ERR_OUTSIDE_WINDOW = 63016
ERR_CHANNEL_REFUSED = 63005  # "Channel did not accept given content"

# The Content API (a host of its own at Twilio: content.twilio.com).
CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
QUICK_REPLY = "twilio/quick-reply"
LIST_PICKER = "twilio/list-picker"
TEXT = "twilio/text"
CONTENT_BODY_LIMIT = 1024
SESSION_QUICK_REPLIES = 3  # in session, without WhatsApp's approval
QUICK_REPLY_TITLE = 20
QUICK_REPLY_ID = 256
LIST_BUTTON = 20  # WhatsApp's limit for the button that opens the list
LIST_ITEMS = 10
LIST_ITEM = 24
LIST_ITEM_ID = 200
LIST_DESCRIPTION = 72
ContentFault = Literal[400, 401, 429, 500, 503]

FaultKind = Literal["500", "503", "429", "timeout"]
FAULT_RESPONSES: dict[str, tuple[int, int, str]] = {
    "500": (500, ERR_INTERNAL, "Internal Server Error"),
    "503": (503, ERR_UNAVAILABLE, "Service Unavailable"),
    "429": (429, ERR_TOO_MANY, "Too Many Requests"),
}
RATE_KINDS = frozenset({"5xx", "500", "503", "429", "timeout"})
MEDIA_TYPES = {"image": "image", "audio": "audio", "video": "video"}


class ManualClock:
    """An injectable wall clock (Unix seconds) that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class TwilioApiError(Exception):
    """A Twilio REST error: HTTP status plus Twilio error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """The JSON error body Twilio returns (legacy format -> TwilioRestException)."""
        return error_response(self.status, self.code, self.message, headers)


@dataclass(frozen=True)
class FakeButton:
    """A button the user sees under a message: a quick reply, or an item of a list."""

    title: str
    id: str
    description: str | None = None


@dataclass
class FakeContent:
    """A content resource created on the Content API."""

    sid: str
    account_sid: str
    friendly_name: str
    language: str
    variables: dict[str, str]
    types: dict[str, dict[str, Any]]
    date_created: float

    @property
    def content_type(self) -> str:
        """The interactive type when there is one, else the first."""
        for kind in (QUICK_REPLY, LIST_PICKER):
            if kind in self.types:
                return kind
        return next(iter(self.types))

    def render(self, given: Mapping[str, str]) -> tuple[str, list[FakeButton], str | None]:
        """(body, buttons, list button) with the variables filled in (the content's samples
        where the message gave none)."""
        values = {**self.variables, **given}
        spec = self.types[self.content_type]

        def fill(text: str) -> str:
            return render_template(text, values)

        body = fill(str(spec.get("body") or ""))
        if self.content_type == QUICK_REPLY:
            buttons = [
                FakeButton(fill(a["title"]), fill(str(a.get("id") or a["title"])))
                for a in spec["actions"]
            ]
            return body, buttons, None
        if self.content_type == LIST_PICKER:
            items = [
                FakeButton(
                    fill(i["item"]),
                    fill(i["id"]),
                    fill(i["description"]) if i.get("description") else None,
                )
                for i in spec["items"]
            ]
            return body, items, fill(spec["button"])
        return body, [], None

    def resource(self, base_url: str) -> dict[str, Any]:
        """The content resource JSON (parsed by twilio's ContentInstance)."""
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "friendly_name": self.friendly_name,
            "language": self.language,
            "variables": self.variables,
            "types": self.types,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_created),
            "url": f"{base_url}/v1/Content/{self.sid}",
            "links": {"approval_fetch": f"{base_url}/v1/Content/{self.sid}/ApprovalRequests"},
        }


@dataclass(frozen=True)
class StatusEvent:
    """One step of a message's status progression."""

    status: str
    error_code: int | None = None


@dataclass
class FakeMessage:
    """An accepted outbound message and what happened to it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    media_urls: list[str]
    content_sid: str | None
    content_variables: dict[str, str] | None
    status_callback: str | None
    messaging_service_sid: str | None
    date_created: float
    accepted_monotonic: float
    outside_window: bool
    fault: str | None = None
    status: str = "queued"
    status_history: list[str] = field(default_factory=lambda: ["queued"])
    error_code: int | None = None
    date_updated: float = 0.0
    date_sent: float | None = None
    planned: deque[StatusEvent] = field(default_factory=deque)
    # A message sent with a quick-reply or list-picker content: what the user can tap.
    content_type: str | None = None
    buttons: list[FakeButton] = field(default_factory=list)
    list_button: str | None = None

    @property
    def is_template(self) -> bool:
        """True for a Content template message (ContentSid)."""
        return self.content_sid is not None

    @property
    def shown(self) -> str:
        """The message as the user sees it: the body, then ``[Title]`` per quick reply, or the
        list's ``[≡ Button]`` and its items (with their descriptions)."""
        if self.list_button is not None:
            items = [
                f"- {b.title}" + (f" ({b.description})" if b.description else "")
                for b in self.buttons
            ]
            return "\n".join([self.body, "", f"[≡ {self.list_button}]", *items])
        if self.buttons:
            return self.body + "\n\n" + " ".join(f"[{b.title}]" for b in self.buttons)
        return self.body

    def button(self, choice: str | int) -> FakeButton:
        """One of the message's buttons or list items, by its title or position (from 1)."""
        if isinstance(choice, int):
            if not 1 <= choice <= len(self.buttons):
                raise ValueError(f"message {self.sid} has no button {choice}: {self.shown!r}")
            return self.buttons[choice - 1]
        for button in self.buttons:
            if button.title == choice:
                return button
        raise ValueError(f"message {self.sid} has no button {choice!r}: {self.shown!r}")

    def uri(self) -> str:
        """The resource path Twilio reports in ``uri``."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The message resource JSON (parsed by twilio's MessageInstance)."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent) if self.date_sent is not None else None,
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri().removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri(),
        }


@dataclass(frozen=True)
class CallbackDelivery:
    """One status callback POST the fake made, and how the receiver answered."""

    url: str
    params: dict[str, str]
    signature: str
    idempotency_token: str
    status_code: int | None
    error: str | None = None


@dataclass(frozen=True)
class MediaItem:
    """A media file hosted by the fake."""

    message_sid: str
    media_sid: str
    data: bytes
    content_type: str


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(ts: float) -> str:
    """Unix seconds as Twilio's RFC 2822 date, e.g. 'Thu, 30 Jul 2015 20:12:31 +0000'."""
    return format_datetime(datetime.fromtimestamp(ts, UTC))


def error_response(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A Twilio error JSON response."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def wa_address(number: str) -> str:
    """Normalise '+62812…', '62812…' or 'whatsapp:+62812…' to 'whatsapp:+62812…'."""
    bare = number.strip().removeprefix("whatsapp:")
    return "whatsapp:" + (bare if bare.startswith("+") else "+" + bare)


def render_template(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{{1}}``-style placeholders; unknown ones are left as they are."""
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def parse_content_variables(raw: str | None) -> dict[str, str] | None:
    """ContentVariables must be a JSON object of strings (else 21656)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TwilioApiError(
            400, ERR_CONTENT_VARIABLES, "The ContentVariables Parameter is invalid"
        )
    return {str(k): v for k, v in value.items()}


CONTENT_FAULTS: dict[int, str] = {
    400: "Invalid content: refused",
    401: "Authenticate",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def content_error(message: str) -> TwilioApiError:
    """A refused Content API request: 400, and (as Twilio's newer APIs do) code = status."""
    return TwilioApiError(400, 400, message)


def _text(spec: Mapping[str, Any], key: str, where: str, limit: int) -> str:
    """A required string of 1..limit characters."""
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise content_error(f"{where}.{key} is required")
    if len(value) > limit:
        raise content_error(f"{where}.{key} exceeds {limit} characters")
    return value


def _unique(values: Sequence[str], where: str) -> None:
    if len(set(values)) != len(values):
        raise content_error(f"{where} must be unique within the message")


def check_quick_reply(spec: Mapping[str, Any]) -> None:
    """twilio/quick-reply, sent in session without approval: 1-3 buttons."""
    where = QUICK_REPLY
    _text(spec, "body", where, CONTENT_BODY_LIMIT)
    actions = spec.get("actions")
    if not isinstance(actions, list) or not actions:
        raise content_error(f"{where}.actions must hold 1 to {SESSION_QUICK_REPLIES} buttons")
    if len(actions) > SESSION_QUICK_REPLIES:
        raise content_error(
            f"{where}.actions: at most {SESSION_QUICK_REPLIES} buttons in a WhatsApp session "
            f"message without approval, got {len(actions)}"
        )
    titles, ids = [], []
    for action in actions:
        if not isinstance(action, dict) or action.get("type") not in (None, "QUICK_REPLY"):
            raise content_error(f"{where}.actions: each is a QUICK_REPLY object")
        titles.append(_text(action, "title", f"{where}.actions", QUICK_REPLY_TITLE))
        ids.append(_text(action, "id", f"{where}.actions", QUICK_REPLY_ID))
    _unique(titles, f"{where}.actions.title")
    _unique(ids, f"{where}.actions.id")


def check_list_picker(spec: Mapping[str, Any]) -> None:
    """twilio/list-picker (in session only): 1-10 items behind one button."""
    where = LIST_PICKER
    _text(spec, "body", where, CONTENT_BODY_LIMIT)
    _text(spec, "button", where, LIST_BUTTON)
    items = spec.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= LIST_ITEMS:
        raise content_error(f"{where}.items must hold 1 to {LIST_ITEMS} items")
    ids = []
    for item in items:
        if not isinstance(item, dict):
            raise content_error(f"{where}.items: each is an object")
        _text(item, "item", f"{where}.items", LIST_ITEM)
        ids.append(_text(item, "id", f"{where}.items", LIST_ITEM_ID))
        if item.get("description") is not None:
            _text(item, "description", f"{where}.items", LIST_DESCRIPTION)
    _unique(ids, f"{where}.items.id")


def check_text(spec: Mapping[str, Any]) -> None:
    """twilio/text: a body."""
    _text(spec, "body", TEXT, MAX_BODY)


CONTENT_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    QUICK_REPLY: check_quick_reply,
    LIST_PICKER: check_list_picker,
    TEXT: check_text,
}


def basic_credentials(header: str) -> tuple[bytes, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def media_message_type(content_type: str) -> str:
    """WhatsApp MessageType for a media content type."""
    return MEDIA_TYPES.get(content_type.split("/", 1)[0], "document")


class TwilioFake:
    """Fake Twilio Messaging API (WhatsApp) plus a simulated WhatsApp user."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        senders: Sequence[str] = (DEFAULT_SENDER,),
        clock: Callable[[], float] = time.time,
        auto_deliver: bool = True,
        read_receipts: bool = False,
        window_failure_status: Literal["undelivered", "failed"] = "undelivered",
        callback_delay: float = 0.05,
        hang_seconds: float = 60.0,
        max_rate: float | None = None,
        messaging_service_sid: str | None = None,
        public_base_url: str | None = None,
        webhook_timeout: float = 15.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.senders = [wa_address(s) for s in senders]
        self.clock = clock
        self.auto_deliver = auto_deliver
        self.read_receipts = read_receipts
        self.window_failure_status = window_failure_status
        self.callback_delay = callback_delay
        self.hang_seconds = hang_seconds
        self.stalled_media: set[str] = set()  # GETs of these hang (a slow carrier network)
        self.max_rate = max_rate
        self.messaging_service_sid = messaging_service_sid
        self.public_base_url = public_base_url
        self.webhook_timeout = webhook_timeout
        self.validator: Any = RequestValidator(auth_token)
        self.messages: list[FakeMessage] = []
        self.accept_times: list[float] = []
        self.callbacks: list[CallbackDelivery] = []
        self.inbound: list[dict[str, str]] = []
        self.deleted_media: list[str] = []
        self.counters: Counter[str] = Counter()
        self.templates: dict[str, str] = {}
        self.contents: dict[str, FakeContent] = {}  # made on the Content API
        self._content_faults: deque[ContentFault | Literal["timeout"]] = deque()
        self.last_inbound: dict[str, float] = {}
        self.media: dict[str, MediaItem] = {}
        self._served_url: str | None = None
        self._forced_faults: deque[FaultKind] = deque()
        self._fault_rate = 0.0
        self._fault_rng = random.Random(0)  # noqa: S311 - fault injection, not security
        self._fault_kinds: tuple[str, ...] = ()
        self._inbound_tokens: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._cond = asyncio.Condition()
        self._release = asyncio.Event()
        self.app = self._build_app()

    # ----------------------------------------------------------------- lifecycle

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve the fake on host:port (0 = free port) and yield its base URL."""
        self._cond = asyncio.Condition()
        self._release = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.aclose)
            url = await stack.enter_async_context(serve_asgi(self.app, host, port))
            stack.callback(self._release.set)  # unblock hung requests before uvicorn stops
            self._served_url = url
            yield url

    async def aclose(self) -> None:
        """Release hung requests, cancel pending callback tasks, close the HTTP client."""
        self._release.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def base_url(self) -> str:
        """The URL the fake is reachable at (public_base_url wins over the served URL)."""
        url = self.public_base_url or self._served_url
        if url is None:
            raise RuntimeError("TwilioFake is not served yet: use `async with fake.serve()`")
        return url.rstrip("/")

    async def drain(self) -> None:
        """Wait until every automatically scheduled status progression has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def http_client(self) -> httpx.AsyncClient:
        """The fake's own HTTP client for webhooks and callbacks (created lazily)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.webhook_timeout, trust_env=False)
        return self._http

    # ----------------------------------------------------------------- configuration

    def add_template(self, sid: str, body: str) -> None:
        """Register an approved Content template with ``{{1}}``-style placeholders."""
        self.templates[sid] = body

    def set_last_inbound(self, number: str, when: float | None) -> None:
        """Set (or with None forget) a user's last inbound time, opening/closing the window."""
        address = wa_address(number)
        if when is None:
            self.last_inbound.pop(address, None)
        else:
            self.last_inbound[address] = when

    def in_window(self, number: str) -> bool:
        """True when the user wrote to us less than 24 h ago (by the injected clock)."""
        last = self.last_inbound.get(wa_address(number))
        return last is not None and self.clock() - last < WINDOW_SECONDS

    def fail_next(self, status: int | Literal["timeout"] = 500, times: int = 1) -> None:
        """Make the next ``times`` message creations fail with 500/503/429 or hang."""
        kind = str(status)
        if kind not in ("500", "503", "429", "timeout"):
            raise ValueError(f"unsupported fault {status!r}: use 500, 503, 429 or 'timeout'")
        self._forced_faults.extend([cast(FaultKind, kind)] * times)

    def fail_content(self, status: ContentFault | Literal["timeout"] = 500, times: int = 1) -> None:
        """Make the next ``times`` Content API creations fail: 400 (the body refused), 401,
        429, 500 or 503 with Twilio's error JSON, or hang ("timeout")."""
        if status not in (400, 401, 429, 500, 503, "timeout"):
            raise ValueError(f"unsupported content fault {status!r}")
        self._content_faults.extend([status] * times)

    def set_fault_rate(
        self,
        rate: float,
        seed: int | None = None,
        kinds: Sequence[str] = ("5xx", "429", "timeout"),
    ) -> None:
        """Fail a random fraction ``rate`` of message creations, reproducibly with ``seed``."""
        unknown = set(kinds) - RATE_KINDS
        if unknown or not kinds or not 0.0 <= rate <= 1.0:
            raise ValueError(f"bad fault rate {rate!r} or kinds {tuple(kinds)!r}")
        self._fault_rate = rate
        self._fault_rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self._fault_kinds = tuple(kinds)

    # ----------------------------------------------------------------- records

    def messages_to(self, number: str) -> list[FakeMessage]:
        """Accepted messages addressed to one user."""
        address = wa_address(number)
        return [m for m in self.messages if m.to == address]

    def message(self, sid: str) -> FakeMessage:
        """The accepted message with this SID (KeyError otherwise)."""
        for msg in self.messages:
            if msg.sid == sid:
                return msg
        raise KeyError(sid)

    def achieved_rate(self) -> float:
        """Accepted messages per second between the first and last acceptance."""
        if len(self.accept_times) < 2:
            return 0.0
        span = self.accept_times[-1] - self.accept_times[0]
        return (len(self.accept_times) - 1) / span if span > 0 else float("inf")

    def duplicate_count(self) -> int:
        """Accepted messages that repeat an earlier (to, body, template, variables)."""
        keys = Counter(
            (m.to, m.body, m.content_sid, json.dumps(m.content_variables, sort_keys=True))
            for m in self.messages
        )
        return sum(n - 1 for n in keys.values())

    async def wait_for_messages(
        self,
        to: str | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[FakeMessage]:
        """Wait until at least ``count`` messages (to ``to``, if given) were accepted."""
        address = wa_address(to) if to is not None else None

        def matching() -> list[FakeMessage]:
            """Messages matching the filter so far."""
            return [m for m in self.messages if address is None or m.to == address]

        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            bodies = [m.body for m in matching()]
            raise TimeoutError(f"wanted {count} message(s) to {to}, got {bodies!r}") from None
        return matching()

    async def wait_for_status(
        self,
        sid: str,
        status: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeMessage:
        """Wait until message ``sid`` has reached ``status`` (any time in its history)."""
        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(lambda: self._has_status(sid, status))
        except TimeoutError:
            raise TimeoutError(f"message {sid} never reached {status!r}") from None
        return self.message(sid)

    def _has_status(self, sid: str, status: str) -> bool:
        """True when the message exists and its history contains ``status``."""
        return any(m.sid == sid and status in m.status_history for m in self.messages)

    async def _notify(self) -> None:
        """Wake every waiter on the records."""
        async with self._cond:
            self._cond.notify_all()

    async def wait_change(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the records change (a message accepted, a status moved) or the timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait()

    async def changed(self) -> None:
        """Wake whoever waits in ``wait_change`` (the sandbox page, after a user's action)."""
        await self._notify()

    # ----------------------------------------------------------------- REST app

    def _build_app(self) -> Starlette:
        """The Starlette app for the REST side."""
        account = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return Starlette(
            routes=[
                Route(f"{account}/Messages.json", self._create_message, methods=["POST"]),
                Route(f"{account}/Messages/{{message_sid}}.json", self._fetch, methods=["GET"]),
                Route(
                    f"{account}/Messages/{{message_sid}}/Media/{{media_sid}}",
                    self._media,
                    methods=["GET", "DELETE"],
                ),
                Route("/v1/Content", self._create_content, methods=["POST"]),
                Route("/v1/Content/{content_sid}", self._fetch_content, methods=["GET"]),
            ]
        )

    def _check_auth(self, request: Request) -> None:
        """Basic auth with the account SID and auth token, and the URL's account."""
        creds = basic_credentials(request.headers.get("authorization", ""))
        ok = creds is not None and (
            hmac.compare_digest(creds[0], self.account_sid.encode())
            & hmac.compare_digest(creds[1], self.auth_token.encode())
        )
        if not ok:
            self.counters["auth_failures"] += 1
            raise TwilioApiError(401, ERR_AUTH, "Authenticate")
        if request.path_params.get("account_sid", self.account_sid) != self.account_sid:
            raise TwilioApiError(404, ERR_NOT_FOUND, f"The requested resource {request.url.path}")

    async def _create_message(self, request: Request) -> Response:
        """POST Messages.json: auth, faults, rate cap, validation, record, maybe hang."""
        self.counters["requests"] += 1
        try:
            self._check_auth(request)
            fault = self._next_fault()
            self._raise_fault(fault)
            self._check_rate()
            async with request.form() as form:
                msg = self._build_message(form)
        except TwilioApiError as exc:
            return exc.response(self._auth_headers(exc))
        msg.fault = fault
        await self._accept(msg)
        if fault == "timeout":
            await self._hang()
        return JSONResponse(msg.resource(), status_code=201)

    def _auth_headers(self, exc: TwilioApiError) -> dict[str, str]:
        """WWW-Authenticate on a 401, like Twilio."""
        return {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else {}

    def _next_fault(self) -> FaultKind | None:
        """The fault for this request: forced ones first, then the random rate."""
        if self._forced_faults:
            return self._forced_faults.popleft()
        if self._fault_rate <= 0 or self._fault_rng.random() >= self._fault_rate:
            return None
        kind = self._fault_rng.choice(self._fault_kinds)
        if kind == "5xx":
            kind = self._fault_rng.choice(("500", "503"))
        return cast(FaultKind, kind)

    def _raise_fault(self, fault: FaultKind | None) -> None:
        """Count the fault and raise the error response for 5xx/429 (timeouts come later)."""
        if fault is None:
            return
        self.counters[f"fault_{fault}"] += 1
        if fault in FAULT_RESPONSES:
            raise TwilioApiError(*FAULT_RESPONSES[fault])

    def _check_rate(self) -> None:
        """Enforce ``max_rate`` accepted messages per sliding second with 429 / 20429."""
        if self.max_rate is None:
            return
        now = time.monotonic()
        recent = sum(1 for t in reversed(self.accept_times[-1000:]) if now - t < 1.0)
        if recent + 1 > max(1.0, self.max_rate):
            self.counters["rate_limited"] += 1
            raise TwilioApiError(429, ERR_TOO_MANY, "Too Many Requests")

    async def _hang(self) -> None:
        """Simulate a request that outlives the client's timeout (released on shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), self.hang_seconds)

    def _build_message(self, form: FormData) -> FakeMessage:
        """Validate the form like Twilio does and build the message record."""
        to, from_ = self._addresses(form)
        body = str(form.get("Body") or "")
        media_urls = [str(u) for u in form.getlist("MediaUrl")]
        content_sid = self._opt(form, "ContentSid")
        variables = parse_content_variables(self._opt(form, "ContentVariables"))
        session = self.contents.get(content_sid or "")
        buttons: list[FakeButton] = []
        list_button = None
        if session is not None:
            body, buttons, list_button = session.render(variables or {})
        else:
            body = self._content(body, media_urls, content_sid, variables)
        now = self.clock()
        # Free text and in-session content need the window; an approved template does not.
        outside = (content_sid is None or session is not None) and not self.in_window(to)
        planned = self._progression(outside)
        if session is not None and not outside and len(body) > CONTENT_BODY_LIMIT:
            planned = [StatusEvent("failed", ERR_CHANNEL_REFUSED)]
        return FakeMessage(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            media_urls=media_urls,
            content_sid=content_sid,
            content_variables=variables,
            status_callback=self._opt(form, "StatusCallback"),
            messaging_service_sid=self._opt(form, "MessagingServiceSid"),
            date_created=now,
            date_updated=now,
            accepted_monotonic=time.monotonic(),
            outside_window=outside,
            planned=deque(planned),
            content_type=session.content_type if session is not None else None,
            buttons=buttons,
            list_button=list_button,
        )

    @staticmethod
    def _opt(form: FormData, name: str) -> str | None:
        """A form field as a string, None when absent or empty."""
        value = form.get(name)
        return str(value) if value else None

    def _addresses(self, form: FormData) -> tuple[str, str]:
        """Validated (To, From); From may come from the messaging service's pool."""
        to = self._opt(form, "To")
        from_ = self._opt(form, "From")
        if from_ is None and self._opt(form, "MessagingServiceSid"):
            from_ = self.senders[0]
        if to is None:
            raise TwilioApiError(400, ERR_TO_REQUIRED, "A 'To' phone number is required.")
        if from_ is None:
            raise TwilioApiError(400, ERR_FROM_REQUIRED, "A 'From' phone number is required.")
        if not WA_ADDRESS.match(to):
            raise TwilioApiError(400, ERR_INVALID_TO, f"Invalid 'To' Phone Number: {to}")
        if not WA_ADDRESS.match(from_):
            raise TwilioApiError(400, ERR_INVALID_FROM, f"Invalid 'From' Phone Number: {from_}")
        if from_ not in self.senders:
            raise TwilioApiError(
                400,
                ERR_NO_CHANNEL,
                "Twilio could not find a Channel with the specified From address",
            )
        return to, from_

    def _content(
        self,
        body: str,
        media_urls: list[str],
        content_sid: str | None,
        variables: dict[str, str] | None,
    ) -> str:
        """Validate Body/MediaUrl/ContentSid and return the text the user will see."""
        if variables is not None and content_sid is None:
            raise TwilioApiError(
                400,
                ERR_CONTENT_SID_REQUIRED,
                "A ContentSid must be specified if ContentVariables are provided",
            )
        if content_sid is not None:
            if content_sid not in self.templates:
                raise TwilioApiError(400, ERR_CONTENT_SID, "The ContentSid is Invalid")
            return render_template(self.templates[content_sid], variables or {})
        if not body and not media_urls:
            raise TwilioApiError(
                400, ERR_NO_CONTENT, "A text message body or media url must be specified."
            )
        if len(body) > MAX_BODY:
            raise TwilioApiError(
                400,
                ERR_BODY_TOO_LONG,
                "The concatenated message body exceeds the 1600 character limit.",
            )
        self._check_media_urls(media_urls)
        return body

    @staticmethod
    def _check_media_urls(media_urls: list[str]) -> None:
        """At most 10 media URLs, each http(s)."""
        if len(media_urls) > MAX_MEDIA:
            raise TwilioApiError(400, ERR_TOO_MANY_MEDIA, "Too many media URLs (max 10).")
        for url in media_urls:
            if not url.startswith(("http://", "https://")):
                raise TwilioApiError(400, ERR_MEDIA_URL, f"Media URL {url} is invalid.")

    def _progression(self, outside_window: bool) -> list[StatusEvent]:
        """The statuses a message will go through after 'queued'."""
        if outside_window and self.window_failure_status == "failed":
            return [StatusEvent("failed", ERR_OUTSIDE_WINDOW)]
        if outside_window:
            return [StatusEvent("sent"), StatusEvent("undelivered", ERR_OUTSIDE_WINDOW)]
        steps = [StatusEvent("sent"), StatusEvent("delivered")]
        return [*steps, StatusEvent("read")] if self.read_receipts else steps

    async def _accept(self, msg: FakeMessage) -> None:
        """Record an accepted message and start its status progression if automatic."""
        self.messages.append(msg)
        self.accept_times.append(msg.accepted_monotonic)
        self.counters["accepted"] += 1
        await self._notify()
        if self.auto_deliver:
            task = asyncio.create_task(self._auto_progress(msg), name=f"twilio-fake:{msg.sid}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, request: Request) -> Response:
        """GET Messages/{sid}.json: the current message resource."""
        try:
            self._check_auth(request)
            msg = self.message(request.path_params["message_sid"])
        except TwilioApiError as exc:
            return exc.response(self._auth_headers(exc))
        except KeyError:
            return error_response(404, ERR_NOT_FOUND, f"The requested resource {request.url.path}")
        return JSONResponse(msg.resource())

    # ----------------------------------------------------------------- Content API

    async def _create_content(self, request: Request) -> Response:
        """POST /v1/Content (JSON): auth, faults, Twilio's limits, 201 with the resource."""
        self.counters["content_requests"] += 1
        try:
            self._check_auth(request)
            fault = self._content_faults.popleft() if self._content_faults else None
            if fault == "timeout":
                self.counters["content_fault_timeout"] += 1
                await self._hang()
                raise TwilioApiError(504, 504, "Gateway Timeout")
            if fault is not None:
                self.counters[f"content_fault_{fault}"] += 1
                raise TwilioApiError(fault, fault, CONTENT_FAULTS[fault])
            try:
                payload = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise content_error("The request body must be JSON") from None
            content = self._build_content(payload)
        except TwilioApiError as exc:
            return exc.response(self._auth_headers(exc))
        self.contents[content.sid] = content
        self.counters["content_created"] += 1
        return JSONResponse(content.resource(self.base_url), status_code=201)

    async def _fetch_content(self, request: Request) -> Response:
        """GET /v1/Content/{sid}: the content resource, or 404."""
        try:
            self._check_auth(request)
        except TwilioApiError as exc:
            return exc.response(self._auth_headers(exc))
        content = self.contents.get(request.path_params["content_sid"])
        if content is None:
            return error_response(404, ERR_NOT_FOUND, f"The requested resource {request.url.path}")
        return JSONResponse(content.resource(self.base_url))

    def _build_content(self, payload: object) -> FakeContent:
        """Validate a create body like Twilio does (see the module's docstring)."""
        if not isinstance(payload, dict):
            raise content_error("The request body must be a JSON object")
        language = payload.get("language")
        if not isinstance(language, str) or not language:
            raise content_error("Language is required")
        name = payload.get("friendly_name") or ""
        variables = payload.get("variables") or {}
        if not isinstance(name, str):
            raise content_error("FriendlyName must be a string")
        if not isinstance(variables, dict) or not all(
            isinstance(v, str) for v in variables.values()
        ):
            raise content_error("Variables must be an object of strings")
        raw_types = payload.get("types")
        if not isinstance(raw_types, dict):
            raise content_error("Types is required")
        # The twilio SDK's own model writes every type it knows, unset ones as null.
        types = {kind: spec for kind, spec in raw_types.items() if spec is not None}
        if not types:
            raise content_error("Types must hold one content type")
        for kind, spec in types.items():
            check = CONTENT_CHECKS.get(kind)
            if check is None:
                raise content_error(f"Content type {kind} is not supported here")
            if not isinstance(spec, dict):
                raise content_error(f"{kind} must be an object")
            check(spec)
        return FakeContent(
            sid=new_sid("HX"),
            account_sid=self.account_sid,
            friendly_name=name,
            language=language,
            variables={str(k): v for k, v in variables.items()},
            types=types,
            date_created=self.clock(),
        )

    async def _media(self, request: Request) -> Response:
        """GET (bytes) or DELETE (204) a hosted media file; both need Basic auth."""
        try:
            self._check_auth(request)
        except TwilioApiError as exc:
            return exc.response(self._auth_headers(exc))
        item = self.media.get(request.path_params["media_sid"])
        if item is None or item.message_sid != request.path_params["message_sid"]:
            return error_response(404, ERR_NOT_FOUND, f"The requested resource {request.url.path}")
        if request.method == "DELETE":
            del self.media[item.media_sid]
            self.deleted_media.append(item.media_sid)
            self.counters["media_deleted"] += 1
            return Response(status_code=204)
        self.counters["media_fetched"] += 1
        if item.media_sid in self.stalled_media:
            await self._hang()
        return Response(item.data, media_type=item.content_type)

    # ----------------------------------------------------------------- status callbacks

    async def _auto_progress(self, msg: FakeMessage) -> None:
        """Move one message through its statuses, posting each callback in order."""
        await asyncio.sleep(self.callback_delay)  # simulated network latency, not polling
        while msg.planned:
            params = await self._apply(msg, msg.planned.popleft())
            if params is not None and msg.status_callback:
                await self._post_callback(msg.status_callback, params, secrets.token_hex(16))

    async def _apply(self, msg: FakeMessage, event: StatusEvent) -> dict[str, str] | None:
        """Set the message's status; return the callback params if it has a StatusCallback."""
        now = self.clock()
        msg.status = event.status
        msg.status_history.append(event.status)
        msg.error_code = event.error_code
        msg.date_updated = now
        if event.status == "sent":
            msg.date_sent = now
        await self._notify()
        return self.callback_params(msg, event) if msg.status_callback else None

    def callback_params(self, msg: FakeMessage, event: StatusEvent) -> dict[str, str]:
        """The form Twilio posts to StatusCallback for a WhatsApp message."""
        params = {
            "MessageSid": msg.sid,
            "SmsSid": msg.sid,
            "MessageStatus": event.status,
            "SmsStatus": event.status,
            "AccountSid": msg.account_sid,
            "From": msg.from_,
            "To": msg.to,
            "ApiVersion": API_VERSION,
            "ChannelPrefix": "whatsapp",
            "ChannelToAddress": msg.to.removeprefix("whatsapp:"),
            "StructuredMessage": "false",
        }
        if msg.messaging_service_sid:
            params["MessagingServiceSid"] = msg.messaging_service_sid
        if event.error_code is not None:
            params["ErrorCode"] = str(event.error_code)
        return params

    async def deliver_status_callbacks(
        self,
        sid: str | None = None,
        *,
        duplicate: bool = False,
        out_of_order: bool = False,
        seed: int | None = None,
    ) -> list[CallbackDelivery]:
        """Advance pending messages (all, or ``sid``) to their final status and post callbacks.

        The fake's own state always advances in order; only the callbacks can be doubled
        (``duplicate``, same idempotency token) or reordered (``out_of_order``: reversed, or
        shuffled with ``seed``). Use with ``auto_deliver=False``.
        """
        batch: list[tuple[str, dict[str, str], str]] = []
        for msg in [m for m in self.messages if sid is None or m.sid == sid]:
            while msg.planned:
                params = await self._apply(msg, msg.planned.popleft())
                if params is not None and msg.status_callback:
                    batch.append((msg.status_callback, params, secrets.token_hex(16)))
        if duplicate:
            batch = [item for item in batch for _ in range(2)]
        if out_of_order and seed is None:
            batch.reverse()
        elif out_of_order:
            random.Random(seed).shuffle(batch)  # noqa: S311 - fault injection, not security
        return [await self._post_callback(url, params, token) for url, params, token in batch]

    async def _post_callback(
        self, url: str, params: dict[str, str], token: str
    ) -> CallbackDelivery:
        """POST one signed status callback; failures are recorded, never raised."""
        signature = self.sign(url, params)
        headers = self._webhook_headers(signature, token)
        try:
            response = await self.http_client().post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            delivery = CallbackDelivery(url, params, signature, token, None, repr(exc))
            self.counters["callbacks_failed"] += 1
        else:
            delivery = CallbackDelivery(url, params, signature, token, response.status_code)
            self.counters["callbacks_sent"] += 1
        self.callbacks.append(delivery)
        return delivery

    @staticmethod
    def _webhook_headers(signature: str | None, token: str) -> dict[str, str]:
        """Headers Twilio puts on webhooks and callbacks."""
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": token}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return headers

    # ----------------------------------------------------------------- simulation side

    def sign(self, url: str, form: Mapping[str, str]) -> str:
        """X-Twilio-Signature for ``form`` posted to ``url`` (real RequestValidator)."""
        return str(self.validator.compute_signature(url, dict(form)))

    def add_media(self, data: bytes, content_type: str, message_sid: str | None = None) -> str:
        """Host a media file and return its Twilio-style URL."""
        message_sid = message_sid or new_sid("MM")
        media_sid = new_sid("ME")
        self.media[media_sid] = MediaItem(message_sid, media_sid, data, content_type)
        return (
            f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}"
            f"/Messages/{message_sid}/Media/{media_sid}"
        )

    def inbound_text(
        self,
        from_number: str,
        body: str,
        profile_name: str = "Warga KTN",
        *,
        to: str | None = None,
    ) -> dict[str, str]:
        """A user's text message, as the inbound webhook form."""
        return self._inbound(from_number, body, "text", profile_name, to)

    def inbound_location(
        self,
        from_number: str,
        lat: float,
        lon: float,
        address: str | None = None,
        label: str | None = None,
        *,
        profile_name: str = "Warga KTN",
        to: str | None = None,
    ) -> dict[str, str]:
        """A shared location: EMPTY Body plus Latitude/Longitude (and Address/Label)."""
        form = self._inbound(from_number, "", "location", profile_name, to)
        form["Latitude"] = str(lat)
        form["Longitude"] = str(lon)
        if address is not None:
            form["Address"] = address
        if label is not None:
            form["Label"] = label
        return form

    def inbound_media(
        self,
        from_number: str,
        data: bytes,
        content_type: str,
        caption: str = "",
        *,
        profile_name: str = "Warga KTN",
        to: str | None = None,
    ) -> dict[str, str]:
        """A photo/voice note/document; the bytes are hosted on the fake's media endpoint."""
        sid = new_sid("MM")
        form = self._inbound(
            from_number, caption, media_message_type(content_type), profile_name, to, sid=sid
        )
        form["NumMedia"] = "1"
        form["MediaUrl0"] = self.add_media(data, content_type, sid)
        form["MediaContentType0"] = content_type
        return form

    def inbound_button(
        self,
        from_number: str,
        payload: str,
        text: str,
        *,
        message_type: str = "button",
        replied_to_sid: str | None = None,
        profile_name: str = "Warga KTN",
        to: str | None = None,
    ) -> dict[str, str]:
        """A quick-reply button press (Body is the button's text)."""
        form = self._inbound(from_number, text, message_type, profile_name, to)
        form["ButtonPayload"] = payload
        form["ButtonText"] = text
        if replied_to_sid is not None:
            form["OriginalRepliedMessageSid"] = replied_to_sid
            form["OriginalRepliedMessageSender"] = form["To"]
        return form

    def tap(
        self,
        message: FakeMessage,
        choice: str | int,
        *,
        profile_name: str = "Warga KTN",
    ) -> dict[str, str]:
        """The user taps a quick reply, or picks an item of the list, of a message they got (by
        its title or position, from 1): ButtonPayload is its id, ButtonText (and Body) its title."""
        button = message.button(choice)
        return self.inbound_button(
            message.to,
            button.id,
            button.title,
            message_type="interactive" if message.list_button is not None else "button",
            replied_to_sid=message.sid,
            profile_name=profile_name,
            to=message.from_,
        )

    def _inbound(
        self,
        from_number: str,
        body: str,
        message_type: str,
        profile_name: str,
        to: str | None,
        *,
        sid: str | None = None,
    ) -> dict[str, str]:
        """The common inbound fields; also opens the user's 24 h window."""
        sender = wa_address(from_number)
        sid = sid or new_sid("SM")
        form = {
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ProfileName": profile_name,
            "MessageType": message_type,
            "SmsSid": sid,
            "WaId": sender.removeprefix("whatsapp:+"),
            "SmsStatus": "received",
            "Body": body,
            "To": wa_address(to) if to is not None else self.senders[0],
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        self.last_inbound[sender] = self.clock()
        self.inbound.append(form)
        return form

    async def post_inbound(
        self,
        url: str,
        form: Mapping[str, str],
        signature: str | None = "auto",
        *,
        signed_url: str | None = None,
    ) -> httpx.Response:
        """POST an inbound webhook form to the bot.

        ``signature``: "auto" signs correctly, "forged" sends a wrong signature, None sends no
        header, any other string is sent as is. ``signed_url`` is the public URL Twilio would
        have signed (defaults to ``url``; differs behind a proxy).
        """
        if signature == "auto":
            signature = self.sign(signed_url or url, form)
        elif signature == "forged":
            signature = base64.b64encode(secrets.token_bytes(20)).decode()
        sid = form.get("MessageSid", "")
        token = self._inbound_tokens.setdefault(sid, secrets.token_hex(16))
        headers = self._webhook_headers(signature, token)
        self.counters["inbound_posted"] += 1
        return await self.http_client().post(url, data=dict(form), headers=headers)

    async def redeliver(
        self,
        url: str,
        form: Mapping[str, str],
        signature: str | None = "auto",
        *,
        signed_url: str | None = None,
    ) -> httpx.Response:
        """POST the same inbound form again (same MessageSid and idempotency token): a retry."""
        self.counters["inbound_redelivered"] += 1
        return await self.post_inbound(url, form, signature, signed_url=signed_url)
