"""Serving an ASGI app with uvicorn inside the current event loop (the app, fakes, sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind the socket ourselves: a clear error when the port is taken, and port 0 works."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio disables Nagle only on known TCP sockets (~40 ms/request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # several worker processes share the port; the kernel spreads connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a server whose address must be known before it starts
    (Twilio signs the URL it calls; Telegram is told the webhook URL).

    Chosen *below* the kernel's ephemeral range: a port the kernel handed out for port 0 is free
    again once probed, so the next server started on port 0 (a fake, a client's socket) could
    take it before ours binds ("Address already in use"). Ports outside the range are never
    handed out that way."""
    low = _ephemeral_low()
    candidates = random.sample(range(10_000, low), k=min(200, low - 10_000))
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # everything below the range taken: let the kernel choose
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default 32768 elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768
    return low if low > 11_000 else 32_768


def make_server(app: ASGIApp, *, lifespan: str = "off") -> QuietServer:
    """A uvicorn server for ``app`` with our logging left alone."""
    # Keep idle connections longer than clients do (httpx: 5 s), so a client never reuses one
    # the server is closing at that moment (a ReadError and a lost request under load).
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan=lifespan,  # type: ignore[arg-type]
        timeout_keep_alive=75,
    )
    return QuietServer(config)


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on host:port (0 = any free port) while the block runs; yields its base URL."""
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    server = make_server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"serve:{bound_port}")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.005)
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
