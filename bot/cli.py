"""The `ktn-bot` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.config import ConfigError, Settings, load_settings
from bot.database import Database, SchemaBehind, connect, prepare_schema
from storage import delivery, migrate
from storage.areas import AreaImportError, get_by_code, import_areas, parse_areas_csv
from storage.invites import create_invite, parse_duration
from storage.types import Role, utcnow

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
    imp.add_argument(
        "file", type=Path, help="CSV with columns code,name,level,parent_code,timezone"
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

    sub.add_parser("run", help="run the bot (web server, channels, dispatcher, scheduler)")
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


async def _areas_import(settings: Settings, file: Path) -> None:
    text = _read_text(file)
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
            f"{r.id}\t{r.status}\t{r.kind}\t{r.channel}\t{r.chat_id}\t{r.attempts}\t"
            f"{r.created_at:%Y-%m-%d %H:%M}\t{r.last_error or ''}"
        )


async def _run(settings: Settings) -> None:
    from bot.app import StartupError, run  # imported here: PTB stays out of the other commands

    try:
        await run(settings)
    except StartupError as exc:
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
    elif args.command == "run":
        asyncio.run(_run(settings))


def configure_logging(level: str) -> None:
    """Plain log lines on stderr; library chatter only when debugging."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("alembic", "httpx", "httpcore", "uvicorn.error", "apscheduler", "telegram"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


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
