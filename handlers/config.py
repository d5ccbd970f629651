"""What the conversation core needs to know about a deployment (built from Settings by bot/)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from handlers.capabilities import Capabilities
from handlers.i18n import Catalog

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

# The four pillars of Kampung Tangguh Nusantara; each category belongs to one (its name comes
# from the catalog, ``pillar.<key>``). Open311 shows it as the service's ``group``.
# Whether resolving a report of a category asks the officer for a closure photo.
CLOSURE_PHOTO = ("required", "optional", "off")
PILLARS = ("keamanan", "kesehatan", "sosial_ekonomi", "ketahanan_pangan")
_DEFAULT_PILLARS: Mapping[str, str] = {
    "keamanan": "keamanan",
    "kesehatan": "kesehatan",
    "sosial_ekonomi": "sosial_ekonomi",
    "ketahanan_pangan": "ketahanan_pangan",
    "bencana": "keamanan",
    "lainnya": "sosial_ekonomi",
}
_DEFAULT_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "keamanan": ("pencurian", "kriminal", "perkelahian", "narkoba", "kamtibmas"),
    "kesehatan": ("sakit", "wabah", "demam berdarah", "posyandu", "puskesmas"),
    "sosial_ekonomi": ("bansos", "pengangguran", "konflik warga", "kemiskinan"),
    "ketahanan_pangan": ("sembako", "gagal panen", "harga pangan", "gizi buruk"),
    "bencana": ("banjir", "longsor", "kebakaran", "gempa", "darurat"),
    "lainnya": ("umum", "lain-lain"),
}


def default_pillar(key: str) -> str:
    """The pillar of a shipped category; a category a deployment adds: sosial_ekonomi."""
    return _DEFAULT_PILLARS.get(key, "sosial_ekonomi")


def default_keywords(key: str) -> tuple[str, ...]:
    """Search words for a shipped category (Open311 ``keywords``); none for others."""
    return _DEFAULT_KEYWORDS.get(key, ())


@dataclass(frozen=True, slots=True)
class Category:
    """A report category; its name comes from the catalog (``category.<key>``), its pillar's
    from ``pillar.<pillar>``. ``keywords`` help other systems find it (Open311).
    ``closure_photo``: resolving asks for a photo of the result (``required``: no photo, not
    resolved; ``optional``: asked, a note alone is enough; ``off``: only the note)."""

    key: str
    urgent: bool = False
    escalate_after_minutes: int | None = None
    pillar: str = "sosial_ekonomi"
    keywords: tuple[str, ...] = ()
    closure_photo: str = "optional"

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"category key {self.key!r} must be lower-case letters/digits/_")
        if self.escalate_after_minutes is not None and self.escalate_after_minutes < 1:
            raise ValueError(f"category {self.key}: escalate_after_minutes must be >= 1")
        if self.pillar not in PILLARS:
            raise ValueError(f"category {self.key}: pillar must be one of {', '.join(PILLARS)}")
        if self.closure_photo not in CLOSURE_PHOTO:
            raise ValueError(
                f"category {self.key}: closure_photo must be one of {', '.join(CLOSURE_PHOTO)}"
            )


def shipped_category(key: str, *, urgent: bool = False) -> Category:
    """A category with its default pillar and keywords."""
    return Category(key, urgent=urgent, pillar=default_pillar(key), keywords=default_keywords(key))


DEFAULT_CATEGORIES = (
    shipped_category("keamanan"),
    shipped_category("kesehatan"),
    shipped_category("sosial_ekonomi"),
    shipped_category("ketahanan_pangan"),
    shipped_category("bencana", urgent=True),
    shipped_category("lainnya"),
)
DEFAULT_EMERGENCY_NUMBERS: Mapping[str, str] = {
    "polisi": "110",
    "darurat": "112",
    "pemadam": "113",
    "ambulans": "119",
}


@dataclass(frozen=True, slots=True)
class ProblemRules:
    """Problems (SARA, ``handlers.problems``): when ktn-bot proposes one, when an action's owner
    is reminded, whether reporters hear of it."""

    # A suggestion: at least this many reports of one category in one area within the days.
    suggest_min_reports: int = 3
    suggest_days: int = 30
    # Reporters of linked reports are told (naming nobody) when the response starts and when
    # the problem is closed.
    tell_reporters: bool = True
    # An action's owner is reminded this many hours before it is due (0: at the due time).
    remind_hours_before: int = 24

    def __post_init__(self) -> None:
        if self.suggest_min_reports < 2:
            raise ValueError("problems: suggest_min_reports must be >= 2")
        if self.suggest_days < 1:
            raise ValueError("problems: suggest_days must be >= 1")
        if self.remind_hours_before < 0:
            raise ValueError("problems: remind_hours_before must be >= 0")


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Categories, emergency numbers, limits and texts. Plain constructor; see ``default()``.

    ``polsek_numbers`` maps an area code to its Polsek's phone; the area or its nearest parent
    listed is used (``bot_areas`` likewise). Minutes and hours are whole numbers.
    """

    catalog: Catalog
    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    emergency_numbers: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_EMERGENCY_NUMBERS)
    )
    polsek_numbers: Mapping[str, str] = field(default_factory=dict)
    draft_idle_minutes: int = 60
    duplicate_window_hours: int = 6
    escalate_after_minutes: int = 60
    urgent_escalate_after_minutes: int = 10
    escalation_max_level: int = 0  # 0: escalations climb to the top area
    claim_idle_minutes: int = 240  # 0: a claim is never offered back
    max_open_claims: int = 5  # 0: no limit
    max_text_length: int = 1000
    # Days after "selesai" in which the reporter may answer "Belum selesai" (0: never).
    reopen_days: int = 7
    default_language: str = "id"
    # Area code -> key of the Telegram bot that serves it (``[[telegram.bots]]``); the area's
    # sub-areas too, unless claimed themselves. Unclaimed areas: the default bot.
    bot_areas: Mapping[str, str] = field(default_factory=dict)
    # Channel name -> what that channel can do, declared by its adapter (bot.wiring gives
    # every channel's); the core decides by these, never by a channel's name.
    channels: Mapping[str, Capabilities] = field(default_factory=dict)
    # The desk (/dasbor): the public base URL its sign-in links start with (None: no desk),
    # and how long such a link is valid.
    desk_url: str | None = None
    desk_login_minutes: int = 10
    # Surges (``handlers.board``): when a group's queue would hold a new alert longer than
    # this many seconds, the group gets the live report board instead (None: never).
    board_after_seconds: float | None = 30.0
    # The newest unclaimed tickets the board lists, each with its claim button.
    board_tickets: int = 15
    problems: ProblemRules = field(default_factory=ProblemRules)
    # The secret of the keyed hash (HMAC-SHA256) that remembers an erased person's channel and
    # chat id (``handlers.personal``); bot.wiring gives KTN_PDP_HASH_SECRET or the one kept in
    # the data folder. The default, random per process, suits tests only.
    pdp_hash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError("at least one report category is needed")
        keys = [c.key for c in self.categories]
        if len(set(keys)) != len(keys):
            raise ValueError(f"category keys must be unique: {keys}")
        if self.default_language not in self.catalog.languages:
            raise ValueError(f"default_language {self.default_language!r} has no catalog")
        for name, value in (
            ("draft_idle_minutes", self.draft_idle_minutes),
            ("escalate_after_minutes", self.escalate_after_minutes),
            ("urgent_escalate_after_minutes", self.urgent_escalate_after_minutes),
            ("max_text_length", self.max_text_length),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1")
        for name, value in (
            ("duplicate_window_hours", self.duplicate_window_hours),
            ("reopen_days", self.reopen_days),
            ("escalation_max_level", self.escalation_max_level),
            ("claim_idle_minutes", self.claim_idle_minutes),
            ("max_open_claims", self.max_open_claims),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.board_after_seconds is not None and self.board_after_seconds < 0:
            raise ValueError("board_after_seconds must be >= 0 (or None)")
        if not 1 <= self.board_tickets <= 50:
            raise ValueError("board_tickets must be 1..50")

    @classmethod
    def default(cls, overrides_path: Path | None = None) -> CoreConfig:
        """The shipped defaults (what config.toml says out of the box), for tests and tools."""
        return cls(
            catalog=Catalog.load(overrides_path),
            polsek_numbers={"17.71.08": "(0736) 000000", "18.09.01": "(0721) 000000"},
        )

    def capabilities(self, channel: str) -> Capabilities:
        """What the channel can do; LookupError for a channel the wiring did not describe."""
        try:
            return self.channels[str(channel)]
        except KeyError:
            raise LookupError(
                f"no capabilities for channel {str(channel)!r} (CoreConfig.channels)"
            ) from None

    def channels_where(self, test: Callable[[Capabilities], bool]) -> frozenset[str]:
        """The names of the described channels that pass ``test`` (for a query's IN)."""
        return frozenset(name for name, caps in self.channels.items() if test(caps))

    def category(self, key: str | None) -> Category | None:
        """The category with this key, or None."""
        for category in self.categories:
            if category.key == key:
                return category
        return None

    def closure_photo(self, category_key: str) -> str:
        """``required``, ``optional`` or ``off`` for resolving a report of the category."""
        category = self.category(category_key)
        return category.closure_photo if category is not None else "optional"

    def escalation_minutes(self, category_key: str, urgent: bool) -> int:
        """Minutes until an unclaimed report escalates: the category's own, urgent is shorter."""
        category = self.category(category_key)
        if category is not None and category.escalate_after_minutes is not None:
            minutes = category.escalate_after_minutes
        elif category is not None and category.urgent:
            minutes = self.urgent_escalate_after_minutes
        else:
            minutes = self.escalate_after_minutes
        if urgent and not (category is not None and category.urgent):
            minutes = min(minutes, self.urgent_escalate_after_minutes)
        return minutes
