"""Telegram's limits as the fake enforces them: flood control, content checks, fault injection."""

from __future__ import annotations

import html
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Literal

from bot.sandbox.telegram_fake.records import JSON, ApiError, bad_request, too_many_requests

Window = tuple[int, float]
FaultKind = Literal["5xx", "429", "timeout"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
RATE_METHODS = frozenset({"sendmessage", "sendphoto", "sendlocation", "senddocument", "sendvoice"})
HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)


@dataclass(frozen=True)
class FloodLimits:
    """Sliding windows ``(max messages, seconds)`` per bot, per group and per private chat."""

    per_bot: tuple[Window, ...] = ((30, 1.0),)
    per_group: tuple[Window, ...] = ((20, 60.0),)
    per_private: tuple[Window, ...] = ((3, 1.0), (10, 10.0))


class SlidingWindow:
    """At most ``limit`` events in any ``seconds``-long interval."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.times: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[0] + self.seconds - now

    def add(self, now: float) -> None:
        """Record one event."""
        self.times.append(now)


class FloodControl:
    """Per-bot and per-chat sliding windows over a monotonic clock."""

    def __init__(self, limits: FloodLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.enabled = True
        self.windows: dict[tuple[object, ...], list[SlidingWindow]] = {}

    def _windows(self, key: tuple[object, ...], spec: Iterable[Window]) -> list[SlidingWindow]:
        """The windows for one key, created on first use."""
        if key not in self.windows:
            self.windows[key] = [SlidingWindow(n, s) for n, s in spec]
        return self.windows[key]

    def check(self, token: str, chat_id: int, private: bool) -> None:
        """Count one message, or raise a 429 ApiError (nothing is counted then)."""
        if not self.enabled:
            return
        chat_spec = self.limits.per_private if private else self.limits.per_group
        windows = self._windows(("bot", token), self.limits.per_bot) + self._windows(
            ("chat", token, chat_id), chat_spec
        )
        now = self.clock()
        wait = max((w.wait_needed(now) for w in windows), default=0.0)
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))
        for window in windows:
            window.add(now)

    def reset(self) -> None:
        """Forget every counted message."""
        self.windows.clear()


@dataclass
class Fault:
    """One injected failure: an HTTP status, or "timeout" (deliver, then hang)."""

    status: int | Literal["timeout"]
    retry_after: int = 1
    description: str | None = None

    @property
    def kind(self) -> FaultKind:
        """ "timeout", "429" or "5xx" (any other status counts as 5xx)."""
        if self.status == "timeout":
            return "timeout"
        return "429" if self.status == 429 else "5xx"

    def error(self) -> ApiError:
        """The error answered for a non-timeout fault."""
        assert self.status != "timeout"
        if self.status == 429:
            return too_many_requests(self.retry_after)
        descriptions = {
            400: "Bad Request: injected fault",
            403: "Forbidden: injected fault",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
        }
        text = self.description or descriptions.get(self.status, f"Error {self.status}")
        return ApiError(self.status, text)


class Faults:
    """Queued one-off failures per method plus a seeded random failure rate for send* calls."""

    def __init__(self) -> None:
        self.queued: dict[str, deque[Fault]] = {}
        self.rate = 0.0
        self.kinds: tuple[FaultKind, ...] = ("5xx", "429", "timeout")
        self.rng = random.Random(0)  # noqa: S311 - test data, not security
        self.counts: Counter[str] = Counter()

    def queue(self, method: str, fault: Fault, times: int) -> None:
        """Fail the next ``times`` calls of ``method``."""
        self.queued.setdefault(method.lower(), deque()).extend([fault] * times)

    def set_rate(self, rate: float, seed: int, kinds: Iterable[FaultKind]) -> None:
        """Fail that fraction of send* calls, choosing among ``kinds``."""
        self.rate = rate
        self.rng = random.Random(seed)  # noqa: S311 - test data, not security
        self.kinds = tuple(kinds)

    def take(self, method: str) -> Fault | None:
        """The fault for this call, if any (queued first, then the random rate)."""
        name = method.lower()
        queue = self.queued.get(name)
        if queue:
            return queue.popleft()
        if self.rate <= 0 or name not in RATE_METHODS:
            return None
        if self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        if kind == "timeout":
            return Fault("timeout")
        return Fault(429, retry_after=1) if kind == "429" else Fault(500)


class _HtmlChecker(HTMLParser):
    """Checks Telegram's HTML subset and collects the visible text."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.visible: list[str] = []
        self.stack: list[str] = []
        self.error: str | None = None

    def _offset(self) -> int:
        """The byte offset of the current token."""
        line, col = self.getpos()
        lines = self.source.split("\n")
        index = sum(len(x) + 1 for x in lines[: line - 1]) + col
        return len(self.source[:index].encode())

    def _fail(self, message: str) -> None:
        """Keep the first error."""
        if self.error is None:
            self.error = message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a supported tag."""
        if tag not in HTML_TAGS:
            self._fail(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost open tag."""
        if not self.stack or self.stack[-1] != tag:
            expected = f'"</{self.stack[-1]}>"' if self.stack else "none"
            self._fail(
                f"Unmatched end tag at byte offset {self._offset()}, "
                f'expected {expected}, found "</{tag}>"'
            )
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        """Visible text; a bare "<" must have been escaped as &lt;."""
        if "<" in data:
            offset = self._offset() + len(data[: data.index("<")].encode())
            self._fail(f'Unsupported start tag "" at byte offset {offset}')
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        """``&lt;`` and friends."""
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        """``&#60;`` and ``&#x3c;``."""
        self.visible.append(html.unescape(f"&#{name};"))


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text after entity parsing, or a 400 "can't parse entities"."""
    if not parse_mode or parse_mode.lower() != "html":
        return text
    checker = _HtmlChecker(text)
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.stack:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    if checker.error:
        raise bad_request(f"can't parse entities: {checker.error}")
    return "".join(checker.visible)


def check_text(text: str | None, parse_mode: str | None) -> None:
    """Message text must be 1..4096 characters after entity parsing."""
    visible = visible_text(text or "", parse_mode)
    if not visible.strip():
        raise bad_request("message text is empty")
    if len(visible) > MAX_TEXT:
        raise bad_request("message is too long")


def check_caption(caption: str | None, parse_mode: str | None) -> None:
    """Captions may be empty but at most 1024 characters."""
    if caption and len(visible_text(caption, parse_mode)) > MAX_CAPTION:
        raise bad_request("message caption is too long")


def _check_inline_button(button: Any) -> None:
    """One inline button: text plus exactly one action, callback_data 1-64 bytes."""
    if not isinstance(button, dict) or not button.get("text"):
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(str(data).encode())
        if not isinstance(data, str) or not 1 <= size <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
        return
    actions = {"url", "login_url", "switch_inline_query", "switch_inline_query_current_chat"}
    actions |= {"switch_inline_query_chosen_chat", "callback_game", "pay", "web_app", "copy_text"}
    if not actions & button.keys():
        raise bad_request("text buttons are unallowed in the inline keyboard")


def _rows(markup: JSON, key: str) -> list[list[Any]]:
    """The rows of a keyboard, or a 400 when the shape is wrong."""
    rows = markup.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request(f'field "{key}" of the keyboard must be an Array of Arrays')
    return rows


def check_reply_markup(markup: Any) -> JSON | None:
    """Validate a reply_markup object; returns it (None when absent)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in _rows(markup, "inline_keyboard"):
            for button in row:
                _check_inline_button(button)
    elif "keyboard" in markup:
        for row in _rows(markup, "keyboard"):
            for button in row:
                if not (isinstance(button, str) or (isinstance(button, dict) and "text" in button)):
                    raise bad_request('can\'t parse keyboard button: field "text" must be a String')
    elif not ({"remove_keyboard", "force_reply"} & markup.keys()):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup
