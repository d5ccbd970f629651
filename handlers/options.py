"""Options typed as text: "1".."n", the label, or the option's word, in any case."""

from __future__ import annotations

import re
from collections.abc import Sequence

_NON_WORD = re.compile(r"[^0-9a-z]+")
YES_WORDS = frozenset({"ya", "iya", "y", "yes", "ok", "oke", "okay", "setuju", "boleh", "yup"})
NO_WORDS = frozenset({"tidak", "tdk", "gak", "nggak", "enggak", "ga", "no", "n", "t", "jangan"})
# Answers to "Sudah benar?" (the summary) that mean "send it".
SEND_WORDS = YES_WORDS | {"sudah", "benar", "betul", "sudahbenar", "sudahbetul", "kirim", "send"}
# Answers to "Ada foto?" that mean "no photo".
SKIP_WORDS = NO_WORDS | {
    "tidakada",
    "gakada",
    "nggakada",
    "gaada",
    "tidakpunya",
    "gakpunya",
    "none",
    "nophoto",
    "lewat",
    "skip",
}


def normalise(text: str) -> str:
    """Lower-case letters and digits only: 'Sosial-Ekonomi' -> 'sosialekonomi'."""
    return _NON_WORD.sub("", text.lower())


def match_option(options: Sequence[tuple[str, str]], text: str | None) -> str | None:
    """The data of the option the text names, or None."""
    if not text or not options:
        return None
    word = normalise(text)
    if not word:
        return None
    if word.isdigit():
        number = int(word)
        return options[number - 1][1] if 1 <= number <= len(options) else None
    for label, data in options:
        if word == normalise(label) or word == normalise(data.rsplit(":", 1)[-1]):
            return data
    for _label, data in options:
        suffix = data.rsplit(":", 1)[-1]
        if (
            (suffix == "yes" and word in YES_WORDS)
            or (suffix == "no" and word in NO_WORDS)
            or (suffix == "send" and word in SEND_WORDS)
            or (suffix == "skip" and word in SKIP_WORDS)
        ):
            return data
    return None
