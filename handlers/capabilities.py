"""What a channel can do, in the core's words: one ``Capabilities`` value per channel.

Each adapter declares its channel's value next to its code (``bot/channels/<name>/
capabilities.py``); the wiring gives the core a mapping channel -> capabilities
(``CoreConfig.channels``), and the core asks that mapping instead of comparing channel names or
keeping a channel's limits. A new channel is a new adapter with its own value: the core does
not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from handlers.types import MediaKind

MB = 1024 * 1024


def _frozen(sizes: Mapping[MediaKind, int]) -> Mapping[MediaKind, int]:
    return MappingProxyType(dict(sizes))


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One channel's facts, as far as the core and the channel's own code decide by them.

    Sizes are bytes, lengths characters. ``receives`` and ``sends`` map the media kinds the
    channel takes in and puts out to the largest file of that kind; a kind that is missing
    cannot go that way.
    """

    # A sent message can be edited in place (an alert then shows who claimed it); else the
    # change goes out as a new message.
    edits_messages: bool
    # The bot can be a member of group chats (alert groups); else officers get alerts 1:1.
    group_chats: bool
    # Buttons one message may carry; 0: options are shown as numbered lines and answered by
    # typing, so a button that only makes sense pressed (an alert's "Tangani") needs words.
    max_buttons: int
    # The longest button label the channel shows in full; None: the channel sets no limit.
    button_label_limit: int | None
    # The longest text of one message, and of a caption on a medium or document (0: none).
    text_limit: int
    caption_limit: int
    receives: Mapping[MediaKind, int] = field(default_factory=dict)
    sends: Mapping[MediaKind, int] = field(default_factory=dict)
    # A ``Document`` the bot made (an export's bytes) can be sent into the chat.
    sends_documents: bool = False
    # Hours after the user's last message in which free text may be sent; after that only an
    # approved template. None: the channel has no such window.
    template_window_hours: int | None = None
    # A deployment may run several bots on this channel, each reaching only the chats that
    # talk to it (``handlers.routing``); else every message goes through the one default bot.
    several_bots: bool = False
    # A reply may carry a button that sends the user's location when pressed (Telegram's
    # request_location keyboard); else the user shares it through the app's own menu.
    location_button: bool = False
    # How many messages the bot may send into one group chat in how many seconds, e.g.
    # (20, 60.0); None: no per-group limit (or no groups). The core reads it to tell when a
    # group's queue would hold an alert too long (``handlers.board``).
    group_window: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "receives", _frozen(self.receives))
        object.__setattr__(self, "sends", _frozen(self.sends))
        if self.max_buttons < 0 or self.text_limit < 1 or self.caption_limit < 0:
            raise ValueError("max_buttons and caption_limit must be >= 0, text_limit >= 1")
        if self.button_label_limit is not None and self.button_label_limit < 1:
            raise ValueError("button_label_limit must be >= 1 (or None)")
        if any(size < 1 for size in (*self.receives.values(), *self.sends.values())):
            raise ValueError("media sizes must be >= 1 byte")
        if self.template_window_hours is not None and self.template_window_hours < 1:
            raise ValueError("template_window_hours must be >= 1 (or None)")
        if self.group_window is not None and (
            self.group_window[0] < 1 or self.group_window[1] <= 0
        ):
            raise ValueError("group_window must be (messages >= 1, seconds > 0) (or None)")

    @property
    def has_buttons(self) -> bool:
        """Options can be pressed (carried back as ``Inbound.button``), not only typed."""
        return self.max_buttons > 0

    @property
    def buttons_need_words(self) -> bool:
        """A button that only makes sense pressed (an alert's "Tangani") needs words beside
        it: the channel has no buttons, or shows them only inside its messaging window (a
        template outside it carries none)."""
        return not self.has_buttons or self.template_window_hours is not None

    def can_send(self, kind: MediaKind, size: int | None = None) -> bool:
        """The channel can send a medium of this kind (and, if given, this many bytes)."""
        limit = self.sends.get(kind)
        return limit is not None and (size is None or size <= limit)
