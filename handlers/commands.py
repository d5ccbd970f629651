"""Commands: Indonesian words with English aliases, with or without "/" and in any case.

Telegram sends ``/lapor`` (``/lapor@ktn_bot`` in groups); WhatsApp users type ``LAPOR`` or
``status KTN-ABC123``. Without a slash a message counts as a command only when it is the command
word alone (or with a valid argument), so a report that starts with "Lapor pak, ..." stays text.
The officers' typed actions (``tangani KTN-ABC123``, ``selesai KTN-ABC123 sudah aman``, ``tolak
KTN-ABC123 alasan``, ``gabung KTN-ABC123 KTN-XYZ789``) and the reporter's answers to a resolved
report (``beres KTN-ABC123``, ``belum KTN-ABC123 alasan``) need a ticket starting with KTN when
typed without a slash; their note may be any length. ``/daftar`` needs its code and
``/hubungkan`` its slash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from storage.invites import CODE_LENGTH
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
    MY_DATA = "my_data"  # a copy of what is kept about the person (UU PDP)
    AREA = "area"
    REGISTER = "register"
    LINK = "link"
    REPORTS = "reports"
    CLAIM = "claim"
    RESOLVE = "resolve"
    REJECT = "reject"
    MERGE = "merge"  # officers: this report duplicates another
    FIXED = "fixed"  # the reporter: the resolved report is really done
    NOT_FIXED = "not_fixed"  # the reporter: it is not, reopen it
    # --- coordinators: reminders and patrol ---
    REMINDERS = "reminders"
    PATROL = "patrol"
    # --- end rem ---
    # --- coordinators: broadcasts and exports ---
    ANNOUNCE = "announce"
    EXPORT = "export"
    # --- end coordinators: broadcasts and exports ---
    DESK = "desk"
    PROBLEMS = "problems"  # staff: problems (SARA), handlers.problems
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
    "dataku": Command.MY_DATA,
    "mydata": Command.MY_DATA,
    "wilayah": Command.AREA,
    "area": Command.AREA,
    "daftar": Command.REGISTER,
    "register": Command.REGISTER,
    "hubungkan": Command.LINK,
    "link": Command.LINK,
    "laporan": Command.REPORTS,
    "reports": Command.REPORTS,
    "tangani": Command.CLAIM,
    "claim": Command.CLAIM,
    "selesai": Command.RESOLVE,
    "resolve": Command.RESOLVE,
    "tolak": Command.REJECT,
    "reject": Command.REJECT,
    "gabung": Command.MERGE,
    "merge": Command.MERGE,
    "duplikat": Command.MERGE,
    "duplicate": Command.MERGE,
    "beres": Command.FIXED,
    "fixed": Command.FIXED,
    "belum": Command.NOT_FIXED,
    "reopen": Command.NOT_FIXED,
    # --- coordinators: reminders and patrol ---
    "pengingat": Command.REMINDERS,
    "reminders": Command.REMINDERS,
    "ronda": Command.PATROL,
    "patrol": Command.PATROL,
    # --- end rem ---
    # --- coordinators: broadcasts and exports ---
    "umumkan": Command.ANNOUNCE,
    "announce": Command.ANNOUNCE,
    "ekspor": Command.EXPORT,
    "export": Command.EXPORT,
    # --- end coordinators: broadcasts and exports ---
    "dasbor": Command.DESK,
    "dashboard": Command.DESK,
    "masalah": Command.PROBLEMS,
    "problems": Command.PROBLEMS,
}
# Staff actions on a report; typed without a slash they need a "KTN-" ticket (see above).
ACTIONS = frozenset({Command.CLAIM, Command.RESOLVE, Command.REJECT, Command.MERGE})
# The reporter's answers to a resolved report; typed without a slash likewise.
ANSWERS = frozenset({Command.FIXED, Command.NOT_FIXED})
# Commands that, typed without a slash, are commands only with a valid argument (never alone).
NEED_ARG_WITHOUT_SLASH = ACTIONS | ANSWERS | {Command.REGISTER}
SLASH_ONLY = frozenset({Command.LINK})
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
    ("dataku", "mydata"),
    ("hapusdata", "deletemydata"),
)
# The menu for group chats (Telegram's BotCommandScopeAllGroupChats), same format as MENU.
GROUP_MENU: tuple[tuple[str, str], ...] = (
    ("hubungkan", "link"),
    ("laporan", "reports"),
    ("darurat", "emergency"),
    ("bantuan", "help"),
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
# --- coordinators: broadcasts and exports ---
ANNOUNCE_STATUS_WORDS = frozenset({"status"})
EXPORT_FORMATS = frozenset({"csv", "geojson", "masalah", "problems"})
# --- end coordinators: broadcasts and exports ---
DESK_LOGOUT_WORDS = frozenset({"keluar", "logout"})  # /dasbor keluar: end every desk session
_AREA_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._\-]{0,31}$")
_INVITE_CODE = re.compile(rf"^[A-Z0-9]{{{CODE_LENGTH}}}$")
_TYPED_ACTION = re.compile(
    r"^(tangani|claim|selesai|resolve|tolak|reject|gabung|merge|duplikat|duplicate"
    r"|beres|fixed|belum|reopen)\s+"
    r"(KTN[\s\-_.#]*[A-Z0-9]{6}(?=[\s.,!?]|$).*)$",
    re.IGNORECASE | re.DOTALL,
)
# --- coordinators: typed without a slash, "pengingat"/"ronda" take any of
# their sub-commands ("ronda ikut 2", "pengingat tambah ...") so they work on WhatsApp too.
SUBCOMMAND_WORDS: dict[Command, frozenset[str]] = {
    Command.REMINDERS: frozenset(
        {"tambah", "add", "jeda", "pause", "lanjut", "resume", "hapus", "delete", "template"}
        | {"templates", "daftar", "list"}
    ),
    Command.PATROL: frozenset(
        {"tim", "team", "hapus", "delete", "jadwal", "schedule", "jeda", "pause", "lanjut"}
        | {"resume", "ikut", "join"}
    ),
}
# --- end rem ---
_SLASH = re.compile(r"^/([A-Za-z_]+)(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.DOTALL)
_TRAILING = ".!?,"
_PROBLEM_ID = re.compile(r"^#?\d{1,9}$")


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
    if command is Command.REGISTER:
        return bool(_INVITE_CODE.match(re.sub(r"[\s\-]", "", arg).upper()))
    # --- coordinators: broadcasts and exports ---
    if command is Command.ANNOUNCE:
        return arg.lower() in ANNOUNCE_STATUS_WORDS
    if command is Command.EXPORT:
        return arg.lower() in EXPORT_FORMATS
    # --- end coordinators: broadcasts and exports ---
    if command is Command.DESK:
        return arg.lower() in DESK_LOGOUT_WORDS
    if command is Command.PROBLEMS:  # "masalah KTN-ABC234" (a report), "masalah 12" (a problem)
        return normalise_ticket(arg) is not None or bool(_PROBLEM_ID.match(arg))
    return False


def parse_typed_action(text: str | None) -> ParsedCommand | None:
    """'selesai KTN-ABC234 sudah aman' -> RESOLVE with arg 'KTN-ABC234 sudah aman'."""
    match = _TYPED_ACTION.match((text or "").strip())
    if match is None:
        return None
    word = match.group(1).lower()
    return ParsedCommand(WORDS[word], word, match.group(2).strip(), False)


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
    action = parse_typed_action(stripped)
    if action is not None:
        return action
    lowered = " ".join(stripped.lower().split()).rstrip(_TRAILING)
    with_sub = _with_subcommand(stripped, lowered)
    if with_sub is not None:
        return with_sub
    if lowered in PHRASES:
        return ParsedCommand(PHRASES[lowered], lowered, None, False)
    words = lowered.split(" ")
    if not 1 <= len(words) <= 2 or words[0] not in WORDS:
        return None
    command = WORDS[words[0]]
    if command in SLASH_ONLY:
        return None
    if len(words) == 1:
        if command in NEED_ARG_WITHOUT_SLASH:
            return None
        return ParsedCommand(command, words[0], None, False)
    arg = stripped.split(None, 1)[1].strip().rstrip(_TRAILING)
    if _arg_is_valid(command, arg):
        return ParsedCommand(command, words[0], arg, False)
    return None


def _with_subcommand(stripped: str, lowered: str) -> ParsedCommand | None:
    """'ronda ikut 2' / 'pengingat tambah ...' typed without a slash."""
    words = lowered.split(" ")
    command = WORDS.get(words[0])
    if command not in SUBCOMMAND_WORDS or len(words) < 2:
        return None
    if words[1] not in SUBCOMMAND_WORDS[command]:
        return None
    return ParsedCommand(command, words[0], stripped.split(None, 1)[1].strip(), False)
