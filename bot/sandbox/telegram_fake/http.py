"""The fake's Starlette app: the Bot API, file downloads and the ``/_sim/`` JSON API."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from bot.sandbox.telegram_fake.botapi import Params, call
from bot.sandbox.telegram_fake.records import JSON, ApiError, Upload

if TYPE_CHECKING:
    from bot.sandbox.telegram_fake.fake import TelegramFake

SimAction = Callable[["TelegramFake", "SimParams"], Any]
NOT_FOUND: JSON = {"ok": False, "error_code": 404, "description": "Not Found"}
UNAUTHORIZED: JSON = {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def read_params(request: Request) -> dict[str, Any]:
    """Query string plus a form, multipart (uploads read into memory) or JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if request.method != "POST":
        return params
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON body") from None
        if isinstance(body, dict):
            params.update(body)
        return params
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form(max_files=100, max_fields=1000) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    params[key] = Upload(value.filename, value.content_type, data)
                else:
                    params[key] = value
    return params


async def hang(fake: TelegramFake, request: Request) -> None:
    """Hold the request until the client gives up, the fake closes or ``hang_seconds`` pass."""

    async def disconnected() -> None:
        """Return when the client closes the connection."""
        while (await request.receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.create_task(disconnected()), asyncio.create_task(fake.wait_closed())]
    _, pending = await asyncio.wait(
        tasks, timeout=fake.hang_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def api_response(result: Any) -> JSONResponse:
    """``{"ok": true, "result": ...}``."""
    return JSONResponse({"ok": True, "result": result})


def error_response(fake: TelegramFake, error: ApiError) -> JSONResponse:
    """Telegram's error body with its HTTP status (429s are counted)."""
    fake.count_error(error)
    return JSONResponse(error.body(), status_code=error.code)


async def bot_api(request: Request) -> Response:
    """``POST|GET /bot<token>/<method>``."""
    fake: TelegramFake = request.app.state.fake
    bot = fake.bots.get(request.path_params["token"])
    if bot is None:
        return JSONResponse(UNAUTHORIZED, status_code=401)
    name = request.path_params["method"]
    try:
        params = Params(await read_params(request))
    except ApiError as error:
        return error_response(fake, error)
    fake.call_counts[name] += 1
    fault = fake.faults.take(name)
    if fault is not None and fault.status != "timeout":
        fake.faults.counts[fault.kind] += 1
        return error_response(fake, fault.error())
    try:
        result = await call(fake, bot, name, params)
    except ApiError as error:
        response = error_response(fake, error)
    else:
        response = api_response(result)
        if fault is not None:
            fake.faults.counts["timeout_delivered"] += 1
    if fault is not None:
        fake.faults.counts["timeout"] += 1
        await hang(fake, request)
    return response


async def download(request: Request) -> Response:
    """``GET /file/bot<token>/<file_path>``: the stored bytes."""
    fake: TelegramFake = request.app.state.fake
    if request.path_params["token"] not in fake.bots:
        return JSONResponse(UNAUTHORIZED, status_code=401)
    path = request.path_params["file_path"]
    stored = fake.files_by_path.get(path)
    if stored is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")


# ---------------------------------------------------------------- /_sim/ API


class SimParams:
    """Parameters of a /_sim/ call, with plain errors (answered as 400)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def get_int(self, name: str, default: int | None = None) -> int:
        """A required (or defaulted) integer."""
        value = self.raw.get(name, default)
        if value is None:
            raise ValueError(f"{name} is required")
        return int(value)

    def get_float(self, name: str) -> float:
        """A required float."""
        if name not in self.raw:
            raise ValueError(f"{name} is required")
        return float(self.raw[name])

    def get_str(self, name: str, default: str | None = None) -> str:
        """A required (or defaulted) string."""
        value = self.raw.get(name, default)
        if value is None:
            raise ValueError(f"{name} is required")
        return str(value)

    def opt(self, name: str) -> str | None:
        """An optional string."""
        value = self.raw.get(name)
        return None if value in (None, "") else str(value)

    def data(self, name: str) -> bytes:
        """A file: an upload field or base64 in ``<name>_base64``."""
        value = self.raw.get(name)
        if isinstance(value, Upload):
            return value.data
        encoded = self.raw.get(f"{name}_base64")
        if encoded is None:
            raise ValueError(f"{name} (file) or {name}_base64 is required")
        try:
            return base64.b64decode(str(encoded), validate=True)
        except binascii.Error:
            raise ValueError(f"{name}_base64 is not base64") from None


def sim_text(fake: TelegramFake, s: SimParams) -> JSON:
    """Send a text message as a user."""
    update_id = fake.send_text(
        s.get_int("chat_id"), s.get_int("user_id"), s.get_str("text"), bot=s.opt("bot")
    )
    return {"update_id": update_id}


def sim_location(fake: TelegramFake, s: SimParams) -> JSON:
    """Share a location as a user."""
    update_id = fake.send_location(
        s.get_int("chat_id"),
        s.get_int("user_id"),
        s.get_float("latitude"),
        s.get_float("longitude"),
        bot=s.opt("bot"),
    )
    return {"update_id": update_id}


def sim_photo(fake: TelegramFake, s: SimParams) -> JSON:
    """Send a photo as a user (multipart ``photo`` or JSON ``photo_base64``)."""
    update_id = fake.send_photo(
        s.get_int("chat_id"),
        s.get_int("user_id"),
        s.data("photo"),
        s.opt("caption"),
        bot=s.opt("bot"),
    )
    return {"update_id": update_id}


def sim_button(fake: TelegramFake, s: SimParams) -> JSON:
    """Press an inline button."""
    update_id = fake.press_button(
        s.get_int("chat_id"),
        s.get_int("user_id"),
        s.get_int("message_id"),
        s.get_str("data"),
        bot=s.opt("bot"),
    )
    return {"update_id": update_id}


def sim_start(fake: TelegramFake, s: SimParams) -> JSON:
    """Press Start (optional payload)."""
    return {"update_id": fake.start(s.get_int("user_id"), s.opt("payload"), bot=s.opt("bot"))}


def sim_block(fake: TelegramFake, s: SimParams) -> JSON:
    """Block the bot."""
    return {"update_id": fake.block(s.get_int("user_id"), bot=s.opt("bot"))}


def sim_user(fake: TelegramFake, s: SimParams) -> JSON:
    """Create a user."""
    user = fake.add_user(
        s.get_int("user_id"),
        s.get_str("first_name"),
        s.opt("last_name"),
        s.opt("username"),
        s.get_str("language_code", "id"),
    )
    return user.to_api()


def sim_group(fake: TelegramFake, s: SimParams) -> JSON:
    """Create a group (``kind`` "group" or "supergroup", ``members`` user ids)."""
    kind: Literal["group", "supergroup"] = "group"
    if s.get_str("kind", "group") == "supergroup":
        kind = "supergroup"
    members = [int(m) for m in s.raw.get("members") or []]
    chat = fake.add_group(s.get_int("chat_id"), s.get_str("title"), kind, members)
    return chat.to_api()


SIM_ACTIONS: dict[str, SimAction] = {
    "text": sim_text,
    "location": sim_location,
    "photo": sim_photo,
    "button": sim_button,
    "start": sim_start,
    "block": sim_block,
    "users": sim_user,
    "groups": sim_group,
}


async def sim_action(request: Request) -> Response:
    """``POST /_sim/<action>``: run a simulation call."""
    fake: TelegramFake = request.app.state.fake
    action = SIM_ACTIONS.get(request.path_params["action"])
    if action is None:
        return JSONResponse({"error": "unknown action"}, status_code=404)
    try:
        result = action(fake, SimParams(await read_params(request)))
    except (ApiError, LookupError, ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(result)


async def sim_state(request: Request) -> Response:
    """``GET /_sim/state``: bots, users and chats."""
    fake: TelegramFake = request.app.state.fake
    chats = []
    for chat in fake.chats.values():
        info = chat.to_api()
        info["members"] = sorted(chat.members)
        info["migrated_to"] = chat.migrated_to
        chats.append(info)
    return JSONResponse(
        {
            "bots": [b.to_api() for b in fake.bots.values()],
            "users": [u.to_api() for u in fake.users.values()],
            "chats": chats,
            "last_event_id": fake.mark(),
        }
    )


async def sim_messages(request: Request) -> Response:
    """``GET /_sim/chats/<chat_id>/messages?bot=``: what the bot sent to the chat."""
    fake: TelegramFake = request.app.state.fake
    try:
        chat_id = int(request.path_params["chat_id"])
        records = fake.messages(chat_id, bot=request.query_params.get("bot"))
    except (LookupError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"messages": [r.to_json() for r in records]})


async def sim_events(request: Request) -> Response:
    """``GET /_sim/events?after=N&timeout=S``: long-poll for events with id > N."""
    fake: TelegramFake = request.app.state.fake
    try:
        after = int(request.query_params.get("after", "0"))
        timeout = min(max(float(request.query_params.get("timeout", "25")), 0.0), 60.0)
    except ValueError:
        return JSONResponse({"error": "after and timeout must be numbers"}, status_code=400)
    fake.call_counts["/_sim/events"] += 1
    fake.notify()
    events = await fake.wait_events(after, timeout)
    return JSONResponse(
        {"events": [e.to_json() for e in events], "last_id": fake.mark()},
        headers={"Cache-Control": "no-store"},
    )


async def sim_file(request: Request) -> Response:
    """``GET /_sim/files/<file_id>``: a stored file's bytes (photos the bot sent...)."""
    fake: TelegramFake = request.app.state.fake
    stored = fake.files.get(request.path_params["file_id"])
    if stored is None:
        return JSONResponse({"error": "unknown file_id"}, status_code=404)
    return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")


def route(path: str, endpoint: Callable[[Request], Awaitable[Response]], *methods: str) -> Route:
    """A Route with explicit methods."""
    return Route(path, endpoint, methods=list(methods))


def build_app(fake: TelegramFake) -> Starlette:
    """The Starlette app serving one fake."""
    sim = [
        route("/state", sim_state, "GET"),
        route("/events", sim_events, "GET"),
        route("/chats/{chat_id}/messages", sim_messages, "GET"),
        route("/files/{file_id}", sim_file, "GET"),
        route("/{action}", sim_action, "POST"),
    ]
    app = Starlette(
        routes=[
            Mount("/_sim", routes=sim),
            route("/bot{token}/{method}", bot_api, "GET", "POST"),
            route("/file/bot{token}/{file_path:path}", download, "GET"),
        ]
    )
    app.state.fake = fake
    return app
