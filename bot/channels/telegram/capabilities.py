"""What Telegram (the Bot API) can do, as the core and this package decide by it."""

from __future__ import annotations

from handlers.capabilities import MB, Capabilities
from handlers.types import MediaKind

_RECEIVED = (
    MediaKind.PHOTO,
    MediaKind.VOICE,
    MediaKind.VIDEO,
    MediaKind.DOCUMENT,
    MediaKind.STICKER,
)

TELEGRAM = Capabilities(
    edits_messages=True,
    group_chats=True,
    max_buttons=100,  # an inline keyboard carries at most 100 buttons
    button_label_limit=None,  # the Bot API sets none; the apps shorten long labels themselves
    text_limit=4096,
    caption_limit=1024,
    # getFile hands bots files up to 20 MB
    receives={kind: 20 * MB for kind in _RECEIVED},
    # bots upload photos up to 10 MB, other files up to 50 MB
    sends={
        MediaKind.PHOTO: 10 * MB,
        MediaKind.VOICE: 50 * MB,
        MediaKind.VIDEO: 50 * MB,
        MediaKind.DOCUMENT: 50 * MB,
    },
    sends_documents=True,
    template_window_hours=None,
    group_window=(20, 60.0),  # 20 messages a minute per group ([outbox] may say otherwise)
    several_bots=True,  # [[telegram.bots]]: each bot reaches the chats that pressed Start on it
    location_button=True,  # a reply keyboard's request_location button
)
