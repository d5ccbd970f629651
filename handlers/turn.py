"""One message being handled: the user's contact, state and draft, and what to answer.

States register three small functions each (python-telegram-bot / aiogram style):

* ``@prompt(State.X)`` asks the state's question (with its options, if any);
* ``@expects(State.X)`` handles the input the state wants and returns True, or returns False;
* ``@fallback(State.X)`` answers anything else: says what is needed and asks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.config import CoreConfig
from handlers.context import Context
from handlers.i18n import Catalog
from handlers.states import State
from handlers.types import Inbound, Location, Media, MediaKind, Option, Outcome, Reply
from storage.drafts import Draft, ReportDraft
from storage.models import Contact, Conversation, Outbox

Prompt = Callable[["Turn"], Awaitable[None]]
Expects = Callable[["Turn"], Awaitable[bool]]
Fallback = Callable[["Turn"], Awaitable[None]]
Intent = Callable[["Turn"], Awaitable[None]]

PROMPTS: dict[State, Prompt] = {}
EXPECTS: dict[State, Expects] = {}
FALLBACKS: dict[State, Fallback] = {}
# What to do once consent and area are settled ("report", "emergency", ...).
INTENTS: dict[str, Intent] = {}

ATTACHABLE = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.VOICE, MediaKind.DOCUMENT})


def prompt(state: State) -> Callable[[Prompt], Prompt]:
    """Register the function that asks the state's question."""

    def register(fn: Prompt) -> Prompt:
        PROMPTS[state] = fn
        return fn

    return register


def expects(state: State) -> Callable[[Expects], Expects]:
    """Register the function that takes the state's expected input."""

    def register(fn: Expects) -> Expects:
        EXPECTS[state] = fn
        return fn

    return register


def fallback(state: State) -> Callable[[Fallback], Fallback]:
    """Register the state's answer to input it did not expect."""

    def register(fn: Fallback) -> Fallback:
        FALLBACKS[state] = fn
        return fn

    return register


def intent(name: str) -> Callable[[Intent], Intent]:
    """Register what happens after onboarding when the user wanted ``name``."""

    def register(fn: Intent) -> Intent:
        INTENTS[name] = fn
        return fn

    return register


@dataclass(slots=True)
class Turn:
    """The working state of one inbound message in a private chat."""

    session: AsyncSession
    msg: Inbound
    ctx: Context
    contact: Contact
    conversation: Conversation
    state: State
    draft: Draft
    outcome: Outcome = field(default_factory=Outcome)
    option: str | None = None
    outbox: list[Outbox] = field(default_factory=list)

    @property
    def config(self) -> CoreConfig:
        """The deployment's core settings."""
        return self.ctx.config

    @property
    def catalog(self) -> Catalog:
        """The texts."""
        return self.ctx.config.catalog

    @property
    def now(self) -> datetime:
        """This message's clock."""
        return self.ctx.now

    @property
    def lang(self) -> str:
        """The contact's language."""
        return self.contact.language or self.config.default_language

    @property
    def text(self) -> str | None:
        """The message text (or caption), stripped; None when empty."""
        return (self.msg.text or "").strip() or None

    @property
    def attachments(self) -> list[Media]:
        """Photos, videos, voice notes and documents in the message (not stickers)."""
        return [m for m in self.msg.media if m.kind in ATTACHABLE]

    @property
    def location(self) -> Location | None:
        """The GPS pin in the message, if any."""
        return self.msg.location

    @property
    def consented(self) -> bool:
        """Whether the contact accepted the privacy notice."""
        return self.contact.consent_at is not None

    @property
    def report(self) -> ReportDraft:
        """The report draft (created empty on first use)."""
        draft = self.draft.get("report")
        if not isinstance(draft, dict):
            draft = {"media": []}
            self.draft["report"] = draft
        return draft

    def offered(self) -> list[tuple[str, str]]:
        """The options last offered in this chat, as (label, data)."""
        return [(str(o[0]), str(o[1])) for o in self.draft.get("opts") or ()]

    def t(self, key: str, /, **params: object) -> str:
        """A text in the contact's language."""
        return self.catalog.text(self.lang, key, **params)

    def say(
        self,
        text: str,
        options: Sequence[Option] = (),
        *,
        location: Location | None = None,
        media: Media | None = None,
        ask_location: bool = False,
        location_label: str | None = None,
    ) -> None:
        """Answer in this chat."""
        self.outcome.replies.append(
            Reply(
                text=text,
                options=tuple(options),
                location=location,
                media=media,
                ask_location=ask_location,
                location_label=location_label,
            )
        )

    async def enter(self, state: State) -> None:
        """Move to the state and ask its question."""
        self.state = state
        await PROMPTS[state](self)

    async def reprompt(self) -> None:
        """Ask the current state's question again."""
        await PROMPTS[self.state](self)

    async def reprompt_if_busy(self) -> None:
        """Ask the current question again unless the user is idle."""
        if self.state is not State.IDLE:
            await self.reprompt()

    async def continue_with(self, name: str | None) -> bool:
        """Run a registered intent; False if there is none."""
        if name is None or name not in INTENTS:
            return False
        await INTENTS[name](self)
        return True
