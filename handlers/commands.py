"""Commands: Indonesian words with English aliases, with or without "/" and in any case.

Telegram sends ``/lapor`` (``/lapor@ktn_bot`` in groups); WhatsApp users type ``LAPOR`` or
``status KTN-ABC123``. Without a slash a message counts as a command only when it is the command
word alone (or with a valid argument), so a report that starts with "Lapor pak, ..." stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from storage.reports import normalise_ticket


class Command(StrEnum):
    START = "start"
    REPORT = "report"
    STATUS = "status"
    CANCEL = "cancel"
    HELP = "help"
    EMERGENCY = "emergency"
    LANGUAGE = "language"
    STOP = "stop"
    ERASE = "erase"
    AREA = "area"
    UNKNOWN = "unknown"


WORDS: dict[str, Command] = {
    "start": Command.START,
    "mulai": Command.START,
    "lapor": Command.REPORT,
    "report": Command.REPORT,
    "status": Command.STATUS,
    "batal": Command.CANCEL,
    "cancel": Command.CANCEL,
    "bantuan": Command.HELP,
    "help": Command.HELP,
    "menu": Command.HELP,
    "darurat": Command.EMERGENCY,
    "emergency": Command.EMERGENCY,
    "sos": Command.EMERGENCY,
    "bahasa": Command.LANGUAGE,
    "language": Command.LANGUAGE,
    "berhenti": Command.STOP,
    "stop": Command.STOP,
    "hapusdata": Command.ERASE,
    "deletemydata": Command.ERASE,
    "wilayah": Command.AREA,
    "area": Command.AREA,
}
# The command menu a channel may show (Telegram's "/" list): (Indonesian word, English word).
# Each has a one-line description in the catalogs under ``commands.<Indonesian word>``.
MENU: tuple[tuple[str, str], ...] = (
    ("start", "start"),
    ("lapor", "report"),
    ("status", "status"),
    ("batal", "cancel"),
    ("bantuan", "help"),
    ("darurat", "emergency"),
    ("bahasa", "language"),
    ("berhenti", "stop"),
    ("hapusdata", "deletemydata"),
)
PHRASES: dict[str, Command] = {"hapus data": Command.ERASE, "delete my data": Command.ERASE}
LANGUAGE_WORDS: dict[str, str] = {
    "id": "id",
    "ind": "id",
    "indonesia": "id",
    "indonesian": "id",
    "en": "en",
    "eng": "en",
    "english": "en",
    "inggris": "en",
}
_AREA_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._\-]{0,31}$")
_SLASH = re.compile(r"^/([A-Za-z_]+)(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.DOTALL)
_TRAILING = ".!?,"


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command, its argument (stripped, or None) and whether it named this bot."""

    command: Command
    word: str
    arg: str | None = None
    slash: bool = True
    addressed: bool = False


def _arg_is_valid(command: Command, arg: str) -> bool:
    if command is Command.STATUS:
        return normalise_ticket(arg) is not None
    if command is Command.LANGUAGE:
        return arg.lower() in LANGUAGE_WORDS
    if command is Command.START:
        return bool(_AREA_CODE.match(arg)) and any(ch.isdigit() for ch in arg)
    return False


def parse_command(
    text: str | None, *, slash_only: bool = False, bot_username: str | None = None
) -> ParsedCommand | None:
    """The command in the text, or None. ``/x@otherbot`` is not ours (None)."""
    if not text:
        return None
    stripped = text.strip()
    match = _SLASH.match(stripped)
    if match:
        word, target, arg = match.group(1).lower(), match.group(2), match.group(3)
        if target and bot_username and target.lower() != bot_username.lower():
            return None
        command = WORDS.get(word, Command.UNKNOWN)
        return ParsedCommand(command, word, (arg or "").strip() or None, True, bool(target))
    if slash_only:
        return None
    lowered = " ".join(stripped.lower().split()).rstrip(_TRAILING)
    if lowered in PHRASES:
        return ParsedCommand(PHRASES[lowered], lowered, None, False)
    words = lowered.split(" ")
    if not 1 <= len(words) <= 2 or words[0] not in WORDS:
        return None
    command = WORDS[words[0]]
    if len(words) == 1:
        return ParsedCommand(command, words[0], None, False)
    arg = stripped.split(None, 1)[1].strip().rstrip(_TRAILING)
    if _arg_is_valid(command, arg):
        return ParsedCommand(command, words[0], arg, False)
    return None
