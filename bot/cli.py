"""The `ktn-bot` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot import pdp as pdp_record
from bot.config import ConfigError, Settings, load_settings
from bot.database import Database, SchemaBehind, connect, prepare_schema
from storage import access_log, delivery, exports, migrate, open311, privacy
from storage.access_log import AccessKind, AccessVia, describe_filter
from storage.areas import (
    AreaImportError,
    descendant_ids,
    get_by_code,
    import_areas,
    parse_areas_csv,
    sample_csv,
)
from storage.db import is_sqlite
from storage.invites import create_invite, parse_duration
from storage.models import Outbox
from storage.types import Role, utcnow

SANDBOX_PORT = 8090  # the sandbox page's port (`ktn-bot sandbox`, or `run` with no channel)

log = logging.getLogger("ktn_bot")


class CommandError(Exception):
    """A failure worded for the operator; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktn-bot", description="Kampung Tangguh Nusantara community-reporting bot"
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: $KTN_CONFIG or ./config.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply pending migrations")
    db.add_parser("current", help="show the schema revision")

    areas = sub.add_parser("areas", help="areas (kelurahan/desa and their parents)")
    areas_sub = areas.add_subparsers(dest="areas_command", required=True, metavar="ACTION")
    imp = areas_sub.add_parser("import", help="import or update areas from a CSV file")
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "file",
        type=Path,
        nargs="?",
        help="CSV with columns code,name,level,parent_code,timezone",
    )
    source.add_argument(
        "--sample", action="store_true", help="the sample areas shipped with ktn-bot"
    )

    invite = sub.add_parser("invite", help="create a single-use invite code for staff")
    invite.add_argument("--role", required=True, choices=["officer", "coordinator", "admin"])
    invite.add_argument(
        "--area", required=True, metavar="CODE", help="area code, e.g. 17.71.08.1004"
    )
    invite.add_argument("--expires", default="7d", help="validity: 30m, 12h, 7d, 2w (default 7d)")

    outbox = sub.add_parser("outbox", help="messages that could not be delivered")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    outbox_sub.add_parser("failed", help="list messages given up on, with the reason")
    retry = outbox_sub.add_parser("retry", help="queue given-up messages again")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox ids (default: all)")

    export = sub.add_parser("export", help="export data (reports) as CSV or GeoJSON")
    export_sub = export.add_subparsers(dest="export_what", required=True, metavar="WHAT")
    exp = export_sub.add_parser("reports", help="reports; anonymous ones without reporter fields")
    exp.add_argument("--format", choices=list(exports.FORMATS), default="csv")
    exp.add_argument("--area", metavar="CODE", help="this area and every area below it")
    exp.add_argument(
        "--since", metavar="DATE", help="reports created on or after DATE (YYYY-MM-DD, local)"
    )
    exp.add_argument("-o", "--output", type=Path, metavar="FILE", help="file (default: stdout)")

    o311 = sub.add_parser("open311", help="API keys of the Open311 GeoReport v2 API")
    o311_sub = o311.add_subparsers(dest="open311_command", required=True, metavar="ACTION")
    key = o311_sub.add_parser("key", help="make a key for an area's system (printed once)")
    key.add_argument(
        "--area", required=True, metavar="CODE", help="the area it files and reads reports of"
    )
    key.add_argument("--label", help="whose system it is, e.g. 'Call centre Polres Bengkulu'")
    o311_sub.add_parser("keys", help="list the keys (never the keys themselves)")
    revoke = o311_sub.add_parser("revoke", help="revoke a key: it is refused from now on")
    revoke.add_argument("key_id", type=int, metavar="KEY_ID", help="the id `open311 keys` shows")

    pdp = sub.add_parser("pdp", help="personal data (UU PDP): record, breach, access log")
    pdp_sub = pdp.add_subparsers(dest="pdp_command", required=True, metavar="ACTION")
    rec = pdp_sub.add_parser(
        "record", help="the record of processing: what is kept, why, who sees it, how long"
    )
    rec.add_argument("--lang", choices=list(pdp_record.LANGS), default="id")
    hit = pdp_sub.add_parser(
        "affected", help="a breach: the contacts to notify (reported, followed, patrol teams)"
    )
    hit.add_argument("--area", required=True, metavar="CODE", help="this area and those below")
    hit.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD (area's time)")
    reads = pdp_sub.add_parser("access-log", help="privileged reads of personal data")
    reads.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD (UTC)")

    run = sub.add_parser(
        "run",
        help="run the bot (web server, channels, dispatcher, scheduler); with no channel "
        "configured (no Telegram token, WhatsApp off) the sandbox instead",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port and a PostgreSQL database (default 1)",
    )

    sandbox = sub.add_parser(
        "sandbox", help="try the bot without a token: a local Telegram and WhatsApp in the browser"
    )
    sandbox.add_argument(
        "--port", type=int, default=SANDBOX_PORT, help=f"the page's port (default {SANDBOX_PORT})"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    sandbox.add_argument(
        "--reset", action="store_true", help="start over: delete the sandbox's demo database"
    )
    return parser


async def _with_db(settings: Settings) -> Database:
    db = connect(settings)
    try:
        await prepare_schema(db, settings.database.url)
    except BaseException:
        await db.close()
        raise
    return db


async def _db_command(settings: Settings, action: str) -> None:
    db = connect(settings)
    try:
        if action == "upgrade":
            before = await migrate.current_revision(db.engine)
            await migrate.upgrade(db.engine)
            after = await migrate.current_revision(db.engine)
            print(f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})"))
        else:
            current = await migrate.current_revision(db.engine)
            head = migrate.head_revision()
            state = "up to date" if current == head else f"behind (code needs {head})"
            print(f"schema at {current or 'none'}: {state}")
    finally:
        await db.close()


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{file} is not UTF-8 text") from None


async def _areas_import(settings: Settings, file: Path | None) -> None:
    text = _read_text(file) if file is not None else sample_csv()
    file = file or Path("the sample areas")
    try:
        rows = parse_areas_csv(text)
    except AreaImportError as exc:
        raise CommandError(f"{file}: nothing imported:\n" + "\n".join(exc.problems)) from None
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            try:
                result = await import_areas(session, rows)
            except AreaImportError as exc:
                await session.rollback()
                raise CommandError(
                    f"{file}: nothing imported:\n" + "\n".join(exc.problems)
                ) from None
            await session.commit()
    finally:
        await db.close()
    print(
        f"{file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged"
    )


async def _invite(settings: Settings, role: str, area_code: str, expires: str) -> None:
    try:
        valid_for = parse_duration(expires)
    except ValueError as exc:
        raise CommandError(f"--expires: {exc}") from None
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            area = await get_by_code(session, area_code)
            if area is None:
                raise CommandError(f"--area: no area with code {area_code} (import areas first)")
            invite = await create_invite(
                session, role=Role(role), area=area, valid_for=valid_for, now=utcnow()
            )
            await session.commit()
    finally:
        await db.close()
    print(f"Invite: role {role} for {area.name} ({area.code}), single use.")
    print(
        f"Valid until {invite.expires_at:%Y-%m-%d %H:%M} UTC. In a private chat with the bot send:"
    )
    print(f"/daftar {invite.code}")
    print(invite.code)


async def _export_reports(
    settings: Settings, fmt: str, area_code: str | None, since: str | None, output: Path | None
) -> None:
    zone = settings.scheduler.timezone
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            area_ids = None
            if area_code is not None:
                area = await get_by_code(session, area_code)
                if area is None:
                    raise CommandError(f"unknown area code {area_code!r}")
                area_ids = await descendant_ids(session, area.id)
                zone = area.timezone or zone
            start = None
            if since is not None:
                try:
                    day = date.fromisoformat(since)
                except ValueError:
                    raise CommandError(f"--since {since!r}: expected YYYY-MM-DD") from None
                start = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))
            rows = await exports.report_rows(session, area_ids, start)
            access_log.record(
                session,
                kind=AccessKind.EXPORT,
                via=AccessVia.CLI,
                now=utcnow(),
                subject=describe_filter(
                    {"format": fmt, "area": area_code, "since": since, "reports": len(rows)}
                ),
            )
            await session.commit()
    finally:
        await db.close()
    text = exports.render(rows, fmt)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    await asyncio.to_thread(output.write_text, text, encoding="utf-8")
    print(f"{len(rows)} report(s) written to {output}", file=sys.stderr)


async def _outbox(settings: Settings, action: str, ids: list[int]) -> None:
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            if action == "retry":
                count = await delivery.retry(session, ids or None, utcnow())
                await session.commit()
                print(f"{count} message(s) queued again")
                return
            rows = await delivery.undelivered(session)
    finally:
        await db.close()
    if not rows:
        print("nothing undelivered")
        return
    print("id\tstatus\tkind\tchannel\tchat\ttries\tcreated (UTC)\treason")
    for r in rows:
        print(
            f"{r.id}\t{r.status}\t{r.kind}\t{r.channel}\t{chat_label(r)}\t{r.attempts}\t"
            f"{r.created_at:%Y-%m-%d %H:%M}\t{r.last_error or ''}"
        )


async def _open311(
    settings: Settings,
    action: str,
    area_code: str | None,
    label: str | None,
    key_id: int | None,
) -> None:
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            if action == "key":
                area = await get_by_code(session, area_code or "")
                if area is None:
                    raise CommandError(
                        f"--area: no area with code {area_code} (import areas first)"
                    )
                row, key = await open311.create_key(
                    session, area_id=area.id, label=(label or "").strip() or None, now=utcnow()
                )
                await session.commit()
                print(f"Open311 key {row.id} for {area.name} ({area.code}); shown only now:")
                print(key)
                return
            if action == "revoke":
                assert key_id is not None
                revoked = await open311.revoke_key(session, key_id, utcnow())
                if revoked is None:
                    raise CommandError(f"no Open311 key with id {key_id} (see: open311 keys)")
                await session.commit()
                print(f"Open311 key {key_id} revoked at {revoked.revoked_at:%Y-%m-%d %H:%M} UTC")
                return
            keys = await open311.list_keys(session)
    finally:
        await db.close()
    if not keys:
        print("no Open311 keys")
        return
    print("id\tarea\tlabel\tcreated (UTC)\tlast used (UTC)\trevoked (UTC)")
    for row, area in keys:
        print(
            f"{row.id}\t{area.code} {area.name}\t{row.label or ''}\t"
            f"{_minute(row.created_at)}\t{_minute(row.last_used_at)}\t{_minute(row.revoked_at)}"
        )


def _day_start(value: str, zone: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r}: expected YYYY-MM-DD") from None
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


async def _pdp(settings: Settings, args: argparse.Namespace) -> None:
    if args.pdp_command == "record":
        sys.stdout.write(pdp_record.record(settings, args.lang))
        return
    db = await _with_db(settings)
    try:
        async with db.sessions() as session:
            if args.pdp_command == "access-log":
                rows = await access_log.since(session, _day_start(args.since, "UTC"))
                print("time (UTC)\twho\tvia\tkind\tticket\tsubject")
                for entry, name, role, ticket in rows:
                    who = "-" if entry.actor_id is None else f"contact {entry.actor_id}"
                    if name:
                        who += f" {name} ({role})"
                    print(
                        f"{_minute(entry.at)}\t{who}\t{entry.via}\t{entry.kind}\t"
                        f"{ticket or '-'}\t{entry.subject or ''}"
                    )
                return
            area = await get_by_code(session, args.area)
            if area is None:
                raise CommandError(f"--area: no area with code {args.area}")
            start = _day_start(args.since, area.timezone or settings.scheduler.timezone)
            found = await privacy.contacts_to_notify(
                session, await descendant_ids(session, area.id), start
            )
    finally:
        await db.close()
    print("contact\tchannel\tname\twhy")
    for person in found:
        # Someone known only as an anonymous reporter is reached by the bot, never named.
        name = "(anonim)" if person.only_anonymous else (person.display_name or "-")
        why = ",".join(sorted(r.replace("anonymous_report", "report") for r in person.reasons))
        print(f"{person.contact_id}\t{person.channel}\t{name}\t{why}")
    print(
        f"{len(found)} contact(s) to notify for {area.name} ({area.code}) since {args.since}",
        file=sys.stderr,
    )


def _minute(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "-"


def chat_label(row: Outbox) -> str:
    """A group's id as is; a person only as their contact number (a WhatsApp chat id is a phone
    number, a Telegram one identifies the person); a malformed id (SQLite keeps any value) as
    a mark, never the value."""
    if type(row.chat_id) is not int:
        return "(malformed)"
    if row.chat_id < 0:
        return str(row.chat_id)
    if row.contact_id is not None:
        return f"contact {row.contact_id}"
    return f"…{str(row.chat_id)[-3:]}"


async def _run(settings: Settings) -> None:
    from bot.app import StartupError, run  # imported here: PTB stays out of the other commands

    try:
        await run(settings)
    except StartupError as exc:
        raise CommandError(str(exc)) from None


async def _sandbox(settings: Settings, host: str, port: int, reset: bool) -> None:
    from bot.app import StartupError
    from bot.sandbox import SeedError, database_path, reset_database, serve_sandbox

    if reset and reset_database(settings):
        print(f"deleted {database_path(settings)}: the demo starts over")

    def announce(url: str) -> None:
        print(
            "\nKTN sandbox: a local Telegram and WhatsApp with demo data "
            f"({database_path(settings)}).\n"
            f"Open {url} in your browser, then type /lapor in the Warga pane. Ctrl-C stops.\n",
            flush=True,
        )

    try:
        await serve_sandbox(settings, host, port, on_ready=announce)
    except (StartupError, SeedError) as exc:
        raise CommandError(str(exc)) from None


def _dispatch(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "db":
        asyncio.run(_db_command(settings, args.db_command))
    elif args.command == "areas":
        asyncio.run(_areas_import(settings, args.file))
    elif args.command == "invite":
        asyncio.run(_invite(settings, args.role, args.area, args.expires))
    elif args.command == "outbox":
        asyncio.run(_outbox(settings, args.outbox_command, getattr(args, "ids", [])))
    elif args.command == "open311":
        asyncio.run(
            _open311(
                settings,
                args.open311_command,
                getattr(args, "area", None),
                getattr(args, "label", None),
                getattr(args, "key_id", None),
            )
        )
    elif args.command == "pdp":
        asyncio.run(_pdp(settings, args))
    elif args.command == "export":
        asyncio.run(_export_reports(settings, args.format, args.area, args.since, args.output))
    elif args.command == "run" and args.workers > 1:
        from bot.roles.workers import supervise

        if is_sqlite(settings.database.url):
            raise CommandError("--workers needs PostgreSQL: SQLite serves one process")
        if settings.http.port == 0:
            raise CommandError("--workers needs a fixed [http] port to share")
        if not has_channel(settings):
            raise CommandError(
                "--workers needs a channel (KTN_TELEGRAM_TOKEN or [whatsapp] enabled = true); "
                "`ktn-bot run` alone serves the sandbox"
            )
        if supervise(args.workers, args.config) != 0:
            raise CommandError("a worker stopped with an error")
    elif args.command == "run" and not has_channel(settings):
        print(
            "No KTN_TELEGRAM_TOKEN and [whatsapp] enabled = false: no channel to serve, so this "
            "is the sandbox (README: Creating the bot, WhatsApp).",
            flush=True,
        )
        serve_forever(_sandbox(settings, settings.http.host, settings.http.port, reset=False))
    elif args.command == "run":
        serve_forever(_run(settings))
    elif args.command == "sandbox":
        serve_forever(_sandbox(settings, args.host, args.port, args.reset))


def has_channel(settings: Settings) -> bool:
    """Whether `run` has a real channel to serve: a Telegram bot token or WhatsApp enabled."""
    telegram = settings.telegram_token is not None or bool(settings.telegram.bots)
    return telegram or settings.whatsapp.enabled


def serve_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run a serving command on uvloop (bench P1: ~10% more updates per second than asyncio's
    own loop), or on asyncio's where uvloop does not exist (Windows)."""
    try:
        import uvloop  # not built for Windows
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


# Libraries that, below these levels, log what people wrote or are sent (aiosqlite: every SQL
# statement with its parameters; python-telegram-bot: every Bot API call and answer, with
# names, chat ids and texts) or the bot token (httpx, aiohttp: request URLs). They stay there
# at log_level DEBUG too: no log line may identify a resident, least of all an anonymous one.
PRIVATE_LOGGERS = {
    "aiosqlite": logging.INFO,
    "telegram": logging.INFO,
    "httpx": logging.WARNING,
    "aiohttp": logging.WARNING,
}


def configure_logging(level: str) -> None:
    """Plain log lines on stderr; library chatter only when debugging, never personal data."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("alembic", "httpx", "httpcore", "uvicorn.error", "apscheduler", "telegram"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    for name, floor in PRIVATE_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < floor:
            logger.setLevel(floor)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ktn-bot` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ktn-bot: config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        _dispatch(args, settings)
    except (CommandError, SchemaBehind, OSError) as exc:
        print(f"ktn-bot: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(
            f"ktn-bot: database error: {exc.__class__.__name__}: {exc.args[0] if exc.args else ''}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
