"""The desk's own texts (bot/web/desk/locales/<lang>.toml): Bahasa Indonesia first, English
complete (a test keeps their keys equal). Keys read ``desk.<name>``; ``{name}`` placeholders."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

LOCALES = Path(__file__).with_name("locales")
DEFAULT = "id"


@dataclass(frozen=True, slots=True)
class DeskTexts:
    """Texts per language, flattened to ``section.key``."""

    by_lang: dict[str, dict[str, str]]

    @classmethod
    def load(cls, folder: Path = LOCALES) -> DeskTexts:
        found: dict[str, dict[str, str]] = {}
        for path in sorted(folder.glob("*.toml")):
            with path.open("rb") as fh:
                data = tomllib.load(fh)
            flat: dict[str, str] = {}
            for section, entries in data.items():
                for key, value in entries.items():
                    flat[f"{section}.{key}"] = str(value)
            found[path.stem] = flat
        return cls(found)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.by_lang)

    def get(self, lang: str, key: str) -> str | None:
        """The text, in the language or else in Indonesian; None when there is none."""
        return self.by_lang.get(lang, {}).get(key) or self.by_lang.get(DEFAULT, {}).get(key)

    def text(self, lang: str, key: str, /, **params: object) -> str:
        """The text with its placeholders filled; the key itself when it is missing."""
        found = self.get(lang, key)
        if found is None:
            return key
        return found.format(**params) if params else found
