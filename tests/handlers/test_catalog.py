"""Texts: both catalogs complete and consistent, overrides checked, every used key exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.config import CoreConfig
from handlers.i18n import LANGUAGES, Catalog, CatalogError, placeholders
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_both_languages_have_the_same_keys(catalog: Catalog) -> None:
    indonesian, english = set(catalog.texts["id"]), set(catalog.texts["en"])
    assert indonesian == english, {
        "only in id": sorted(indonesian - english),
        "only in en": sorted(english - indonesian),
    }


def test_both_languages_have_the_same_placeholders(catalog: Catalog) -> None:
    different = {
        key: (sorted(placeholders(text)), sorted(placeholders(catalog.texts["en"][key])))
        for key, text in catalog.texts["id"].items()
        if placeholders(text) != placeholders(catalog.texts["en"][key])
    }
    assert not different


def test_no_text_is_empty(catalog: Catalog) -> None:
    for lang in LANGUAGES:
        assert all(t.strip() for t in catalog.texts[lang].values()), lang


def test_every_key_the_code_uses_exists(catalog: Catalog) -> None:
    """Literal keys such as "report.ask_category" in handlers/ all have a text."""
    sections = {key.split(".", 1)[0] for key in catalog.texts["id"]}
    alternatives = "|".join(sorted(sections))
    pattern = re.compile(rf"[\"']((?:{alternatives})\.[a-z_]+)[\"']")
    used = {
        match
        for path in (ROOT / "handlers").glob("*.py")
        for match in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert len(used) > 100
    missing = sorted(k for k in used if k not in catalog.texts["id"])
    assert not missing


def test_every_default_category_and_number_has_a_name(catalog: Catalog) -> None:
    config = CoreConfig.default()
    for lang in LANGUAGES:
        for category in config.categories:
            assert f"category.{category.key}" in catalog.texts[lang]
        for number in config.emergency_numbers:
            assert f"number.{number}" in catalog.texts[lang]


def test_category_names_and_consent_are_plain_indonesian(catalog: Catalog) -> None:
    assert catalog.text("id", "category.sosial_ekonomi") == "Sosial-Ekonomi"
    consent = catalog.text("id", "consent.body")
    for must in ("27 Tahun 2022", "/hapusdata", "/berhenti", "anonim", "Bhabinkamtibmas"):
        assert must in consent
    assert "/deletemydata" in catalog.text("en", "consent.body")


def test_override_replaces_a_text_without_code_changes(tmp_path: Path) -> None:
    path = tmp_path / "texts.toml"
    path.write_text(
        '[id]\n"report.skip" = "Tidak ada foto"\n'
        '[id.category]\nbanjir = "Banjir"\n'
        '[en.report]\nsubmitted = "Thanks! Ticket {ticket}."\n',
        encoding="utf-8",
    )
    catalog = Catalog.load(path)
    assert catalog.text("id", "report.skip") == "Tidak ada foto"
    assert (
        catalog.text("en", "report.submitted", ticket="KTN-AAAAAA") == "Thanks! Ticket KTN-AAAAAA."
    )
    assert catalog.text("id", "category.banjir") == "Banjir"
    assert catalog.text("en", "report.skip") == "Skip"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[id]\n"report.skipp" = "x"\n', "report.skipp"),
        ('[en]\n"report.submitted" = "Ticket {tiket}"\n', "report.submitted"),
        ('[en]\n"report.submitted" = "No ticket at all"\n', "report.submitted"),
        ('[fr]\n"report.skip" = "Passer"\n', "[fr]"),
        ('[id]\n"report.skip" = 3\n', "report.skip"),
        ('[id]\n"category.banjir" = "Banjir {x}"\n', "category.banjir"),
        ("[id\n", "not valid TOML"),
    ],
)
def test_bad_override_is_an_error_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "texts.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        Catalog.load(path)
    assert message in str(info.value)


def test_missing_override_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        Catalog.load(tmp_path / "nope.toml")
