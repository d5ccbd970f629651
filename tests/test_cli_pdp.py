"""`ktn-bot pdp`: the record of processing from the configuration, the contacts to tell of a
breach, and the access log, run as an operator runs them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from storage.areas import get_by_code
from storage.db import session_factory
from storage.models import Contact, PatrolMember, PatrolTeam, Report, ReportFollower
from tests.conftest import ROOT
from tests.support.cli import cli

SAMPLE = ROOT / "storage" / "samples" / "areas-sample.csv"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///data/ktn.db"\n[http]\nport = 0\n'
        "[retention]\nmedia_days = 90\noutbox_text_days = 0\n"
    )
    return path


def test_the_record_says_what_the_configuration_does_in_both_languages(cfg: Path) -> None:
    bahasa = cli(cfg, "pdp", "record", env={"KTN_TELEGRAM_TOKEN": "123456:abc"})
    assert bahasa.returncode == 0, bahasa.stderr
    text = bahasa.stdout
    assert "Catatan pemrosesan data pribadi" in text
    assert "Masa simpan: 90 hari" in text  # media, as configured
    assert "tidak dihapus otomatis" in text  # outbox texts: 0 keeps them
    assert "730 hari setelah laporan ditutup" in text  # the default for closed reports
    assert "Telegram" in text and "Twilio" not in text  # only the channels enabled
    assert "Pasal 20 ayat 2 huruf a" in text
    english = cli(cfg, "pdp", "record", "--lang", "en")
    assert "Record of personal data processing" in english.stdout
    assert "Kept for: 90 days" in english.stdout
    assert "no channel enabled" in english.stdout


async def _seed(db: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    now = datetime.now(UTC)
    async with session_factory(engine)() as s:
        here = await get_by_code(s, "17.71.08.1004")
        elsewhere = await get_by_code(s, "18.09.01.2006")
        assert here is not None and elsewhere is not None
        people = {
            name: Contact(channel=channel, external_id=n, display_name=name, phone="+62812000")
            for n, (name, channel) in enumerate(
                [
                    ("Siti", "telegram"),
                    ("Rahasia", "whatsapp"),
                    ("Budi", "whatsapp"),
                    ("Joko", "telegram"),
                    ("Lama", "telegram"),
                    ("Jauh", "telegram"),
                    ("Terhapus", "telegram"),
                ],
                1,
            )
        }
        people["Terhapus"].erased_at = now
        s.add_all(people.values())
        await s.flush()

        def report(
            n: int, who: str, area: int, *, days: int = 1, anonymous: bool = False
        ) -> Report:
            return Report(
                ticket=f"KTN-T{n:05d}",
                category="keamanan",
                description="Rumah Siti dimasuki orang",
                area_id=area,
                reporter_id=people[who].id,
                anonymous=anonymous,
                created_at=now - timedelta(days=days),
            )

        followed = report(1, "Siti", here.id)
        s.add_all(
            [
                followed,
                report(2, "Rahasia", here.id, anonymous=True),
                report(3, "Lama", here.id, days=400),
                report(4, "Jauh", elsewhere.id),
                report(5, "Terhapus", here.id),
            ]
        )
        team = PatrolTeam(area_id=here.id, name="Tim A")
        s.add(team)
        await s.flush()
        s.add(ReportFollower(report_id=followed.id, contact_id=people["Budi"].id))
        s.add(PatrolMember(team_id=team.id, name="Joko", contact_id=people["Joko"].id))
        await s.commit()
    await engine.dispose()


def test_affected_lists_who_to_tell_of_a_breach_and_no_more(cfg: Path) -> None:
    assert cli(cfg, "areas", "import", str(SAMPLE)).returncode == 0
    asyncio.run(_seed(cfg.parent / "data" / "ktn.db"))
    since = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    result = cli(cfg, "pdp", "affected", "--area", "17.71.08.1004", "--since", since)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.strip().splitlines()
    assert header == "contact\tchannel\tname\twhy"
    listed = {row.split("\t")[2]: row.split("\t") for row in rows}
    assert set(listed) == {"Siti", "(anonim)", "Budi", "Joko"}  # not old, elsewhere, erased
    assert listed["(anonim)"][1:] == ["whatsapp", "(anonim)", "report"]  # reached, not named
    assert listed["Budi"][3] == "follow" and listed["Joko"][3] == "team"
    assert "+62812000" not in result.stdout and "Rahasia" not in result.stdout
    assert "4 contact(s) to notify for Sumber Jaya" in result.stderr
    missing = cli(cfg, "pdp", "affected", "--area", "99", "--since", since)
    assert missing.returncode == 1 and "no area with code 99" in missing.stderr


def test_an_export_is_in_the_access_log_without_its_data(cfg: Path) -> None:
    assert cli(cfg, "areas", "import", str(SAMPLE)).returncode == 0
    asyncio.run(_seed(cfg.parent / "data" / "ktn.db"))
    exported = cli(cfg, "export", "reports", "--area", "17.71.08.1004")
    assert exported.returncode == 0 and "Rumah Siti" in exported.stdout
    log = cli(cfg, "pdp", "access-log", "--since", "2020-01-01")
    assert log.returncode == 0, log.stderr
    header, row = log.stdout.strip().splitlines()
    assert header.split("\t")[1:] == ["who", "via", "kind", "ticket", "subject"]
    assert row.split("\t")[1:5] == ["-", "cli", "export", "-"]
    assert "format=csv area=17.71.08.1004" in row and "Siti" not in row
