"""The desk's catalogs: English has every key Bahasa Indonesia has, with the same placeholders;
every text a template or the app asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from bot.web.desk.texts import DeskTexts

DESK = Path(__file__).resolve().parents[3] / "bot" / "web" / "desk"


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    texts = DeskTexts.load()
    assert texts.languages == {"id", "en"}
    ids, ens = texts.by_lang["id"], texts.by_lang["en"]
    assert set(ids) == set(ens)
    for key, text in ids.items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", ens[key])), key


def test_every_text_used_exists() -> None:
    texts = DeskTexts.load()
    used: set[str] = set()
    for path in [*DESK.glob("templates/*.html"), *DESK.glob("*.py")]:
        used |= set(re.findall(r"""t\(\s*'(desk\.[a-z_0-9]+)'""", path.read_text()))
        used |= set(re.findall(r'"(desk\.[a-z_]+[a-z0-9])"', path.read_text()))
    missing = sorted(k for k in used if texts.get("id", k) is None)
    assert used and missing == []
