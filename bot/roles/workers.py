"""`ktn-bot run --workers N`: N worker processes on one port, supervised by this one.

Each worker is a plain `ktn-bot run` with ``[http] reuse_port`` on, so the kernel spreads
incoming connections (webhooks, health checks) over them (SO_REUSEPORT). They share the
PostgreSQL database; one of them holds the scheduler role and one the sender role. A worker
that exits unexpectedly is started again; SIGTERM/SIGINT are passed on to every worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before a crashed worker is started again
POLL = 0.2  # seconds between looks at the workers


def worker_command(config: str | None) -> list[str]:
    """The command line of one worker."""
    command = [sys.executable, "-m", "bot"]
    if config is not None:
        command += ["--config", config]
    return [*command, "run"]


def supervise(count: int, config: str | None) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; returns the exit code (0 after a signal)."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    env = {**os.environ, "KTN_HTTP__REUSE_PORT": "true"}
    command = worker_command(config)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers = [subprocess.Popen(command, env=env) for _ in range(count)]  # noqa: S603
        log.info("started %d workers: %s", count, ", ".join(str(w.pid) for w in workers))
        while not stopping:
            time.sleep(POLL)
            for i, proc in enumerate(workers):
                code = proc.poll()
                if code is None or stopping:
                    continue
                log.warning("worker %d exited with %d; starting it again", proc.pid, code)
                time.sleep(RESTART_DELAY)
                workers[i] = subprocess.Popen(command, env=env)  # noqa: S603
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait() for proc in workers]
        log.info("all workers stopped")
        return 0 if all(c == 0 for c in codes) else 1
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
