"""`ktn-bot` run as an operator runs it: a subprocess, and waiting for a line of its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.conftest import ROOT


def cli(
    cfg: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def wait_for_line(stream: object, needle: str, timeout: float = 30.0) -> str:
    """Read the child's stderr until a line contains needle (in a thread, so we can time out)."""
    found: list[str] = []
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for line in stream:  # type: ignore[attr-defined]
            seen.append(line)
            if needle in line:
                found.append(line)
                done.set()
                return
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    if not done.wait(timeout) or not found:
        raise AssertionError(f"no {needle!r} in output:\n{''.join(seen)}")
    return found[0]


def sandbox_serves_then_stops(proc: subprocess.Popen[str]) -> str:
    """A sandbox started as a child (stdout piped): wait for its URL, check the page is served,
    stop it with Ctrl-C (exit 0); the URL. The child is killed if anything fails."""
    try:
        line = wait_for_line(proc.stdout, "in your browser")
        url = line.split("Open ", 1)[1].split(" ", 1)[0]
        assert 'data-pane="group"' in httpx.get(url, timeout=5).text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        return url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
