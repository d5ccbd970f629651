"""One process: the page, the fake Bot API and the fake Twilio behind it on one port, and the real
bot pointed at both (its webhooks on a port of its own, where the Twilio fake posts)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.config import Settings
from bot.database import Database, connect
from bot.media.library import make_library
from bot.sandbox.demo import (
    BOT_NAME,
    BOT_USERNAME,
    COORDINATOR_ID,
    SANDBOX_TOKEN,
    WA_BOT_NUMBER,
    WHATSAPP_USERS,
    page_config,
)
from bot.sandbox.seed import seed_database, seed_fake
from bot.sandbox.telegram_fake import FloodLimits, TelegramFake
from bot.sandbox.twilio_fake import TwilioFake, WhatsAppSim
from bot.web.desk import Desk
from bot.web.serving import free_port, serve_asgi
from bot.wiring import core_config_from
from storage import contacts
from storage.desk import create_login
from storage.types import utcnow

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
DEFAULT_PORT = 8090
DB_FILE = "sandbox.db"
NO_CACHE = {"Cache-Control": "no-cache"}


def build_app(
    fake: TelegramFake,
    twilio: TwilioFake,
    whatsapp: WhatsAppSim,
    desk: Desk | None = None,
    db: Database | None = None,
) -> Starlette:
    """The page (``/``, ``/static/``, ``/sandbox.json``), the WhatsApp pane's ``/_wa/`` API and
    Twilio's REST routes in front of the Telegram fake's routes; and the desk (``/dasbor``) on
    the sandbox's database with ``/sandbox/dasbor`` signing the demo coordinator in ("Buka
    dasbor" in the coordinator's pane)."""

    async def index(_request: Request) -> Response:
        """The page."""
        return FileResponse(STATIC / "index.html", headers=NO_CACHE)

    async def config(_request: Request) -> Response:
        """Who is in which pane, and the demo pin."""
        return JSONResponse(page_config(), headers=NO_CACHE)

    async def open_desk(_request: Request) -> Response:
        """A sign-in link for the demo coordinator, as /dasbor in their chat would give."""
        if desk is None or db is None:
            return Response(status_code=404)
        async with db.sessions() as session:
            coordinator = await contacts.find(session, "telegram", COORDINATOR_ID)
            if coordinator is None:
                return Response(status_code=404)
            contact_id = coordinator.id
            minutes = desk.settings.login_minutes
            token = create_login(session, contact_id, utcnow(), timedelta(minutes=minutes))
            await session.commit()
        return RedirectResponse(f"/dasbor/masuk/{token}", status_code=303)

    desk_routes = [*desk.routes(), Route("/sandbox/dasbor", open_desk)] if desk else []

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/sandbox.json", config, methods=["GET"]),
            *desk_routes,
            Mount("/static", app=StaticFiles(directory=STATIC)),
            *whatsapp.routes(),
            *twilio.app.routes,  # /2010-04-01/Accounts/..., /v1/Content
            Mount("", app=fake.app),  # /bot<token>/<method>, /file/bot<token>/..., /_sim/...
        ]
    )


def database_path(settings: Settings) -> Path:
    """The sandbox's own SQLite file, in the data folder beside the real database."""
    return settings.data_dir / DB_FILE


def with_sandbox_database(settings: Settings) -> Settings:
    """The settings with the database switched to the sandbox's SQLite file."""
    url = f"sqlite+aiosqlite:///{database_path(settings)}"
    return settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}
    )


def sandbox_dir(settings: Settings) -> Path:
    """Where the sandbox's bot keeps its files (its media store) under the deployment's."""
    return settings.data_dir / "sandbox"


def sandbox_settings(
    settings: Settings, url: str, bot_port: int = 0, twilio: TwilioFake | None = None
) -> Settings:
    """The bot in the sandbox: own database and media folder, the local Bot API and fake token;
    with ``twilio``, WhatsApp on through that fake (served at ``url``), the bot's webhooks on
    ``bot_port``."""
    base = with_sandbox_database(settings)
    telegram = base.telegram.model_copy(
        update={
            "base_url": f"{url}/bot",
            "base_file_url": f"{url}/file/bot",
            "mode": "polling",
            "webhook_url": None,
            "bots": [],  # the sandbox is one bot, whatever the deployment runs
        }
    )
    whatsapp = base.whatsapp.model_copy(update={"enabled": False})
    if twilio is not None:
        whatsapp = base.whatsapp.model_copy(
            update={
                "enabled": True,
                "from_number": WA_BOT_NUMBER,
                "public_url": f"http://127.0.0.1:{bot_port}",
                "api_base_url": url,
                "content_base_url": url,
                "templates": {},  # the fake knows no approved templates
            }
        )
    return base.model_copy(
        update={
            "data_dir": sandbox_dir(settings),
            "telegram": telegram,
            "whatsapp": whatsapp,
            "http": base.http.model_copy(
                update={"host": "127.0.0.1", "port": bot_port, "reuse_port": False}
            ),
            # the desk is served by the page's server: its links and tiles (none: offline)
            "web": base.web.model_copy(update={"public_url": url, "tiles_url": ""}),
            # the desk on the page's server writes rows the bot's sender finds by its sweep
            "outbox": base.outbox.model_copy(update={"sweep_seconds": 1.0}),
            "telegram_token": SecretStr(SANDBOX_TOKEN),
            "telegram_webhook_secret": None,
            "twilio_account_sid": SecretStr(twilio.account_sid) if twilio else None,
            "twilio_auth_token": SecretStr(twilio.auth_token) if twilio else None,
            "media_url_secret": None,
        }
    )


def reset_database(settings: Settings) -> bool:
    """Delete the sandbox database (and SQLite's side files); whether there was one."""
    path = database_path(settings)
    existed = path.exists()
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return existed


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


async def serve_sandbox(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    stop: asyncio.Event | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
    flood_limits: FloodLimits | None = None,
) -> None:
    """Seed, serve the page and the fake Bot API, run the bot until ``stop``/SIGTERM/SIGINT.

    ``on_ready`` gets the page's URL once the bot is polling. Raises what ``bot.app.run``
    raises (e.g. StartupError), and SeedError when the demo data cannot be created.
    """
    from bot.app import run  # PTB is imported only when the sandbox runs

    stop = stop or asyncio.Event()
    added = await seed_database(with_sandbox_database(settings))
    if added:
        log.info("sandbox demo data created in %s: %s", database_path(settings), ", ".join(added))
    fake = TelegramFake(
        SANDBOX_TOKEN, username=BOT_USERNAME, first_name=BOT_NAME, flood_limits=flood_limits
    )
    seed_fake(fake)
    twilio = TwilioFake(senders=(WA_BOT_NUMBER,), callback_delay=0.01)
    bot_port = free_port()
    whatsapp = WhatsAppSim(twilio, f"http://127.0.0.1:{bot_port}/whatsapp/inbound", WHATSAPP_USERS)
    if not is_loopback(host):
        log.warning("the sandbox on %s can be driven by anyone who reaches it", host)
    own = with_sandbox_database(settings)
    db = connect(own)
    web = settings.web.model_copy(update={"tiles_url": ""})  # the sandbox works offline
    # the bot's own media folder (sandbox_settings): the desk shows photos and takes closure ones
    media = make_library(own.model_copy(update={"data_dir": sandbox_dir(settings)}), db.sessions)
    desk = Desk(
        db.sessions,
        core_config_from(own),
        web,
        media=media,
        photo_limit=own.media.limit_bytes("photo"),
    )
    try:
        await media.start()
        app = build_app(fake, twilio, whatsapp, desk, db)
        async with serve_asgi(app, host, port) as url:
            fake.url = url
            twilio.public_base_url = _loopback_url(url)  # where the bot fetches residents' photos
            wired = sandbox_settings(settings, twilio.public_base_url, bot_port, twilio)
            bot = asyncio.create_task(run(wired, stop), name="sandbox-bot")
            try:
                if await _bot_polling(fake, bot) and on_ready is not None:
                    on_ready(url)
                await bot
            finally:
                stop.set()
                await asyncio.gather(bot, return_exceptions=True)
                whatsapp.close()
                await twilio.aclose()
                await fake.aclose()  # wakes the page's long polls so the server can stop
    finally:
        await media.close()
        await db.close()


def _loopback_url(url: str) -> str:
    """The page's URL as the bot on this machine reaches it (a wildcard host is loopback)."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


async def _bot_polling(fake: TelegramFake, bot: asyncio.Task[None]) -> bool:
    """Wait until the bot asks for updates (True) or ends first (False)."""
    fake_bot = fake.get_bot()

    async def polled() -> None:
        """Return once getUpdates was called."""
        while fake_bot.poll_generation == 0:
            await fake.wait_change(None)

    waiter = asyncio.create_task(polled())
    await asyncio.wait({waiter, bot}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    return fake_bot.poll_generation > 0 and not bot.done()
