"""Text catalogs: every sentence the bot says, Indonesian first, English complete.

The catalogs are TOML files in ``handlers/locales`` (``id.toml``, ``en.toml``); nested tables
become dotted keys (``[report] ask_category`` is ``report.ask_category``) and texts use
``{placeholder}`` formatting. A deployment replaces any text from an override file with ``[id]``
and ``[en]`` tables, without code changes. An override key that does not exist, or whose
placeholders differ from the original's, is an error naming the key. New ``category.*``,
``number.*`` and ``template.*`` keys are allowed, for categories, numbers and health reminder
templates a deployment adds.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = ("id", "en")
EXTENSIBLE_PREFIXES = ("category.", "number.", "template.")


class CatalogError(Exception):
    """A catalog or override file is wrong; the message names the file and the key."""


def placeholders(text: str) -> frozenset[str]:
    """The ``{names}`` a text expects."""
    names = set()
    for _literal, field_name, _spec, _conversion in string.Formatter().parse(text):
        if field_name is None:
            continue
        if not field_name or not field_name.isidentifier():
            raise ValueError(f"placeholder {{{field_name}}} must be a plain name")
        names.add(field_name)
    return frozenset(names)


def _flatten(table: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, source, full + "."))
        elif isinstance(value, str):
            flat[full] = value
        else:
            raise CatalogError(f"{source}: key {full} must be a text, not {type(value).__name__}")
    return flat


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"text file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from exc


def _check_placeholders(texts: Mapping[str, str], source: str) -> None:
    for key, text in texts.items():
        try:
            placeholders(text)
        except ValueError as exc:
            raise CatalogError(f"{source}: key {key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Catalog:
    """All texts per language: ``catalog.text("id", "report.ask_category")``."""

    texts: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, overrides_path: Path | None = None, locales: Path = LOCALES) -> Catalog:
        """Read the shipped catalogs, then the deployment's override file if given."""
        texts: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            path = locales / f"{lang}.toml"
            texts[lang] = _flatten(_read_toml(path), str(path))
            _check_placeholders(texts[lang], str(path))
        if overrides_path is not None:
            cls._apply_overrides(texts, overrides_path)
        return cls(texts)

    @staticmethod
    def _apply_overrides(texts: dict[str, dict[str, str]], path: Path) -> None:
        raw = _read_toml(path)
        for lang, table in raw.items():
            if lang not in texts or not isinstance(table, Mapping):
                raise CatalogError(
                    f"{path}: top-level [{lang}] is not a language; use "
                    + " and ".join(f"[{x}]" for x in LANGUAGES)
                )
            for key, text in _flatten(table, str(path), "").items():
                source = f"{path}: [{lang}] key {key}"
                try:
                    wanted = placeholders(text)
                except ValueError as exc:
                    raise CatalogError(f"{source}: {exc}") from None
                original = texts[lang].get(key)
                if original is None:
                    if not key.startswith(EXTENSIBLE_PREFIXES):
                        raise CatalogError(f"{source} is not a known text")
                    if wanted:
                        raise CatalogError(f"{source} takes no placeholders, got {sorted(wanted)}")
                elif wanted != placeholders(original):
                    raise CatalogError(
                        f"{source} must use the placeholders {sorted(placeholders(original))}, "
                        f"got {sorted(wanted)}"
                    )
                texts[lang][key] = text

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the catalog speaks."""
        return tuple(self.texts)

    def get(self, lang: str, key: str) -> str | None:
        """The raw text, or None when neither the language nor Indonesian has it."""
        table = self.texts.get(lang) or self.texts["id"]
        found = table.get(key)
        if found is None and lang != "id":
            found = self.texts["id"].get(key)
        return found

    def text(self, lang: str, key: str, /, **params: object) -> str:
        """The formatted text; a missing key or placeholder is a KeyError (a bug, not input)."""
        raw = self.get(lang, key)
        if raw is None:
            raise KeyError(f"no text {key!r}")
        return raw.format_map(params) if params or "{" in raw else raw
