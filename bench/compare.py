"""Before/after: P1-P5 on two commits in one run, interleaved, with a verdict per figure.

    .venv/bin/python bench/compare.py              # 4b0f526 (before issue 10) vs HEAD, 5 rounds
    .venv/bin/python bench/compare.py --before REF --after REF --rounds N [--p4-full] [--p5-full]

Each side is its commit checked out into a git worktree of its own under ``--workdir`` with its
own venv, installed alike (``pip install -e .``: the product's dependencies, through pip's usual
configuration and cache; not the test extras, which bring packages the bot then imports, e.g.
cryptography, which python-telegram-bot loads when present). Uncommitted changes of this
checkout are not measured. The *current* benchmark harness (bench/*.py of this checkout) is
copied into both trees and run there with that tree's Python, so the measurement is the same
code on both sides. Where a module the harness imports lives at an older path on a tree (issue
10 moved ``bot/outbox.py`` to ``bot/delivery/dispatcher.py``, ...), a one-line re-export is
written at the current path in that scratch tree (``SHIMS``); nothing else is touched.

Each round runs every check on both sides back to back (P1/P2, P3, P4, P5), each as its own
process in the side's tree; which side goes first alternates from round to round (A B, B A, ...)
so a drift of the machine's load falls on both. A figure is the median over rounds; its noise is
the largest ratio between two rounds of the same side; a figure is "worse beyond noise" when
after/before is further from 1, in the bad direction, than that. CPU-time figures (of the bot's
process, or of the dispatcher's) stand beside the wall-clock ones: on a shared machine they move
much less.

P4 seeds 100,000 reports + 10,000 contacts per side by default (the issue's 1,000,000 + 100,000
with ``--p4-full``: about a minute per side on a quiet machine); P5 leaves 1,000 drafts in
progress (10,000 with ``--p5-full``). P2 under background load runs with ``--p2-load`` only:
where other work shares the cores, the bot saturates well below the 200 updates/s asked and the
figure measures the other tenants (it took ~4 minutes a round at load average 8). The trees are
removed at the end unless ``--keep`` (the next run then reuses them and their venvs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = "4b0f526"  # the last commit before issue 10 ("one house for every channel")

# Modules the harness imports at their current path -> (the older module, the names it takes).
# Written into a tree only where the current path does not exist there.
SHIMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bot/delivery/dispatcher.py": ("bot.outbox", ("Dispatcher", "Envelope")),
    "bot/delivery/windows.py": ("bot.outbox", ("ChannelLimits",)),
    "bot/channels/telegram/sender.py": ("bot.telegram", ("TelegramSender",)),
    "bot/channels/telegram/channel.py": ("bot.telegram", ("PerUserProcessor",)),
    "bot/sandbox/telegram_fake/__init__.py": (
        "bot.telegram_fake",
        ("DEFAULT_TOKEN", "TelegramFake"),
    ),
    "tests/support/chats.py": ("handlers.testing", ("SUMBER_JAYA", "load_areas")),
}
# A second source for one module: send_request lived apart from PerUserProcessor.
SHIM_EXTRA: dict[str, tuple[str, tuple[str, ...]]] = {
    "bot/channels/telegram/channel.py": ("bot.telegram_channel", ("send_request",)),
}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    group: str  # the probe that measures it


FIGURES = [
    Figure("p1_rate", "P1 ktn-bot, 50 residents at once", "updates/s", True, "p1"),
    Figure("p1_cpu", "P1 ktn-bot CPU per update (bot process)", "ms", False, "p1"),
    Figure("p1_echo", "P1 bare PTB echo bot, same round", "updates/s", True, "p1"),
    Figure("p1_vs_echo", "P1 ratio ktn-bot / bare echo bot", "", True, "p1"),
    Figure("p1_calls", "P1 Bot API calls per update", "", False, "p1"),
    Figure("p2_idle_p50", "P2 Kirim -> alert idle, p50", "ms", False, "p1"),
    Figure("p2_idle_p95", "P2 Kirim -> alert idle, p95", "ms", False, "p1"),
    Figure("p2_load_p95", "P2 under background load, p95", "ms", False, "p1"),
    Figure("p2_load_rate", "P2 background load achieved", "updates/s", True, "p1"),
    Figure("p3_paced", "P3 broadcast at 30 msg/s, ratio to the limit", "", True, "p3"),
    Figure("p3_429", "P3 broadcast at 30 msg/s, 429s", "", False, "p3"),
    Figure(
        "p3_ceiling", "P3 dispatcher ceiling (instant sender, 10,000 rows)", "msg/s", True, "p3"
    ),
    Figure("p3_ceiling_cpu", "P3 dispatcher ceiling, CPU per message", "us", False, "p3"),
    Figure("p3_e2e", "P3 end to end over HTTP (3,000 rows)", "msg/s", True, "p3"),
    Figure("p3_e2e_cpu", "P3 end to end, sender's CPU per message", "us", False, "p3"),
    Figure("p4_rate", "P4 SQLite grown: P1 ktn-bot", "updates/s", True, "p4"),
    Figure("p4_cpu", "P4 SQLite grown: CPU per update", "ms", False, "p4"),
    Figure("p4_slowdown", "P4 slowdown, empty/grown P1 rate (same round)", "", False, "p4"),
    Figure("p4_p95", "P4 SQLite grown: P2 idle p95", "ms", False, "p4"),
    Figure("p5_idle", "P5 RSS idle", "MB", False, "p5"),
    Figure("p5_busy", "P5 RSS with the drafts in progress", "MB", False, "p5"),
    Figure("p5_peak", "P5 RSS peak", "MB", False, "p5"),
]
GROUPS = ("p1", "p3", "p4", "p5")
P2_LOAD_OFF = (
    "--p2-load; on a shared 2-core machine the bot saturates and the figure measures the "
    "other tenants (and takes minutes a round)"
)


# --- the verdict (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: Figure
    before: float | None  # median over rounds; None: not measured on that tree
    after: float | None
    ratio: float | None  # after / before
    noise: float | None  # the largest ratio between two rounds of one side (>= 1)
    verdict: str


def spread(values: Sequence[float]) -> float:
    """max/min of one side's rounds (1 when they agree; inf when one is 0 and another not)."""
    low, high = min(values), max(values)
    if low == high:
        return 1.0
    return math.inf if low <= 0 else high / low


def ratio(after: float, before: float) -> float:
    if after == before:
        return 1.0
    return math.inf if before == 0 else after / before


def judge(
    figure: Figure,
    before: Sequence[float] | None,
    after: Sequence[float] | None,
    missing: str = "",
) -> Row:
    """One figure's row: medians, ratio, the noise seen between rounds, and the verdict."""
    if not before or not after:
        side = (
            "either tree"
            if not before and not after
            else f"the {'after' if before else 'before'} tree"
        )
        why = f" ({missing})" if missing else ""
        b = statistics.median(before) if before else None
        a = statistics.median(after) if after else None
        return Row(figure, b, a, None, None, f"not measured on {side}{why}")
    b, a = statistics.median(before), statistics.median(after)
    r = ratio(a, b)
    noise = max(spread(before), spread(after))
    if len(before) < 2 or len(after) < 2:
        return Row(figure, b, a, r, None, "one round: no spread to judge by")
    worse = r if not figure.higher_is_better else (1 / r if r else math.inf)
    if worse > noise:
        verdict = "**worse beyond noise**"
    elif worse < 1 / noise:
        verdict = "better beyond noise"
    else:
        verdict = "within noise"
    return Row(figure, b, a, r, noise, verdict)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table: figure, before, after, ratio, noise, verdict."""
    lines = [
        "| figure | before | after | ratio after/before | noise (round to round) | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        unit = f" ({row.figure.unit})" if row.figure.unit else ""
        better = "higher" if row.figure.higher_is_better else "lower"
        ratio_text = "—" if row.ratio is None else f"{row.ratio:.2f}"
        noise_text = "—" if row.noise is None else f"×{row.noise:.2f}"
        if row.noise is not None and math.isinf(row.noise):
            noise_text = "∞"
        lines.append(
            f"| {row.figure.label}{unit}, {better} is better | {_num(row.before)} | "
            f"{_num(row.after)} | {ratio_text} | {noise_text} | {row.verdict} |"
        )
    return "\n".join(lines)


def rows_from(
    results: dict[str, dict[str, list[float]]],
    missing: dict[str, str],
    skipped: dict[str, str] | None = None,
) -> list[Row]:
    """``results[side][figure key]``: values per round for 'before' and 'after'; ``missing``:
    why a figure failed; ``skipped``: figures not asked for in this run, and why."""
    skipped = skipped or {}
    return [
        Row(f, None, None, None, None, f"not run: {skipped[f.key]}")
        if f.key in skipped
        else judge(
            f,
            results["before"].get(f.key),
            results["after"].get(f.key),
            missing.get(f.key, ""),
        )
        for f in FIGURES
    ]


# --- the trees -------------------------------------------------------------------------------


@dataclass
class Side:
    name: str  # "before" / "after"
    label: str  # the commit, for the table's heading
    root: Path
    python: Path
    shims: list[str] = field(default_factory=list)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def scratch_tree(name: str, ref: str, workdir: Path) -> Side:
    """``ref`` in a git worktree of its own with a venv (both kept between runs with --keep)."""
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    root = workdir / f"ktn-bench-{sha[:7]}"
    if not (root / ".git").exists():
        print(f"   checking out {sha[:7]} into {root}", flush=True)
        git("worktree", "add", "--detach", "--force", str(root), sha)
    elif git("rev-parse", "HEAD", cwd=root) != sha:
        raise SystemExit(f"{root} holds another commit; remove it or pass --workdir")
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        print(f"   pip install -e {root} (its own venv)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", str(root)],
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        if done.returncode != 0:
            raise SystemExit(f"pip install -e {root} failed:\n{done.stderr[-3000:]}")
    side = Side(name, sha[:7], root, python)
    install_harness(side)
    return side


def install_harness(side: Side) -> None:
    """This checkout's bench/*.py into the tree, and the shims its layout needs."""
    for script in HERE.glob("*.py"):
        shutil.copy2(script, side.root / "bench" / script.name)
    for path, (module, names) in SHIMS.items():
        target = side.root / path
        if target.exists() and not target.read_text().startswith(SHIM_MARK):
            continue  # the tree has the module itself
        lines = [SHIM_MARK, f"from {module} import {', '.join(names)}  # noqa: F401\n"]
        if path in SHIM_EXTRA:
            extra, more = SHIM_EXTRA[path]
            lines.append(f"from {extra} import {', '.join(more)}  # noqa: F401\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        for package in _packages(side.root, target.parent):
            init = package / "__init__.py"
            if not init.exists():
                init.write_text(SHIM_MARK)
        target.write_text("".join(lines))
        side.shims.append(f"{path} <- {module}")


SHIM_MARK = "# written by bench/compare.py: the module at its current path, from its older one\n"


def _packages(root: Path, folder: Path) -> list[Path]:
    parts = folder.relative_to(root).parts
    return [root.joinpath(*parts[: i + 1]) for i in range(len(parts))]


# --- running the probes ----------------------------------------------------------------------


@dataclass
class Probe:
    """One check on one side in one round: its figures, or why it failed."""

    figures: dict[str, float]
    error: str = ""
    load: float = 0.0
    seconds: float = 0.0


def run_probe(side: Side, group: str, args: argparse.Namespace, tmp: Path) -> Probe:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    command = [
        str(side.python),
        str(side.root / "bench" / "compare.py"),
        "--probe",
        group,
        "--tmp",
        str(tmp),
        "--residents",
        str(args.residents),
        "--probes",
        str(args.probes),
        "--load",
        str(args.load),
        "--paced",
        str(args.paced),
        "--conversations",
        str(args.conversations),
        *(["--p2-load"] * args.p2_load),
    ]
    try:
        done = subprocess.run(
            command, cwd=side.root, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return Probe({}, f"timed out after {args.timeout} s", load)
    took = time.perf_counter() - started
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0 or not last.startswith("{"):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Probe({}, f"exit {done.returncode}: {tail[:200]}", load, took)
    return Probe(json.loads(last), "", load, took)


def compare(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    before = scratch_tree("before", args.before, workdir)
    after = scratch_tree("after", args.after, workdir)
    sides = {"before": before, "after": after}
    for side in sides.values():
        shims = "; ".join(side.shims) or "none needed"
        print(f"   {side.name}: {side.label} at {side.root} — shims: {shims}", flush=True)
    results: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    missing: dict[str, str] = {}
    seeded_ok = True
    loads: list[float] = []
    groups = [g for g in GROUPS if g in args.only.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ktn-compare-") as tmp_name:
        tmp = Path(tmp_name)
        for name, side in sides.items():
            (tmp / name).mkdir()
            if "p4" in groups:
                print(f"   {name}: seeding P4 ({args.reports:,} reports)...", flush=True)
                seeded = seed(side, args, tmp / name)
                if seeded.error:
                    seeded_ok = False
                    missing.update(
                        {f"{name}:{f.key}": seeded.error for f in FIGURES if f.group == "p4"}
                    )
                else:
                    print(f"   {name}: seeded in {seeded.figures['seconds']:.0f} s", flush=True)
        for i in range(args.rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for group in groups:
                for name in order:
                    if group == "p4" and not seeded_ok:
                        continue
                    probe = run_probe(sides[name], group, args, tmp / name)
                    loads.append(probe.load)
                    shown = ", ".join(f"{k} {v:.4g}" for k, v in probe.figures.items())
                    print(
                        f"   round {i + 1} {group} {name} (load {probe.load:.1f}, "
                        f"{probe.seconds:.0f} s): {probe.error or shown}",
                        flush=True,
                    )
                    if probe.error:
                        for f in FIGURES:
                            if f.group == group:
                                missing.setdefault(f"{name}:{f.key}", probe.error)
                        continue
                    for key, value in probe.figures.items():
                        results[name].setdefault(key, []).append(value)
                    if group == "p4" and results[name].get("p1_rate"):
                        empty = results[name]["p1_rate"][-1]
                        results[name].setdefault("p4_slowdown", []).append(
                            empty / probe.figures["p4_rate"]
                        )
    for key, why in list(missing.items()):
        if ":" in key:  # a check that failed in a round: the first error of each side
            name, figure = key.split(":", 1)
            if name not in missing.get(figure, ""):
                missing[figure] = "; ".join(filter(None, [missing.get(figure), f"{name}: {why}"]))
    minutes = (time.perf_counter() - started) / 60
    print()
    print(
        f"before = {before.label}, after = {after.label}; {args.rounds} rounds, interleaved "
        f"(order alternating), medians; {minutes:.0f} min; {os.cpu_count()} cores; load average "
        f"(1 min) at the probes' start: {min(loads, default=0):.1f}–{max(loads, default=0):.1f}, "
        f"median {statistics.median(loads) if loads else 0:.1f}"
    )
    sizes = {
        "p3": f"P3 paced: {args.paced} recipients",
        "p4": f"P4: {args.reports:,} reports + {args.contacts:,} contacts (SQLite)",
        "p5": f"P5: {args.conversations:,} drafts",
    }
    print("; ".join(text for group, text in sizes.items() if group in groups))
    print()
    skipped = {} if args.p2_load else dict.fromkeys(("p2_load_p95", "p2_load_rate"), P2_LOAD_OFF)
    rows = rows_from(results, missing, skipped)
    print(table([r for r in rows if r.figure.group in groups]))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "loads": loads}, indent=1))
    if not args.keep:
        for side in sides.values():
            git("worktree", "remove", "--force", str(side.root))


def seed(side: Side, args: argparse.Namespace, tmp: Path) -> Probe:
    command = [
        str(side.python),
        str(side.root / "bench" / "compare.py"),
        "--probe",
        "seed",
        "--tmp",
        str(tmp),
        "--reports",
        str(args.reports),
        "--contacts",
        str(args.contacts),
    ]
    done = subprocess.run(command, cwd=side.root, capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0 or not last.startswith("{"):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Probe({}, f"seeding failed: {tail[:200]}")
    return Probe(json.loads(last))


# --- inside a tree: one check, its figures as one JSON line ----------------------------------


def probe(args: argparse.Namespace) -> None:
    import asyncio
    import logging

    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))  # the tree this copy of the script stands in
    measure: dict[str, Callable[[argparse.Namespace, Path], Any]] = {
        "p1": _p1,
        "p3": _p3,
        "p4": _p4,
        "p5": _p5,
        "seed": _seed,
    }
    figures = asyncio.run(measure[args.probe](args, Path(args.tmp)))
    print(json.dumps(figures))


GROWN = "p4-grown.db"


async def _seed(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from harness import prepared_db

    started = time.perf_counter()
    await prepared_db(tmp / GROWN, contacts=args.contacts, reports=args.reports)
    return {"seconds": time.perf_counter() - started}


async def _bot_rate(bot: Any, count: int) -> tuple[float, float, float, list[float]]:
    """RunningBot.rate, with the bot process's CPU: updates/s, CPU ms/update, calls/update,
    and the alerts' latencies."""
    from harness import cpu_seconds

    import bench

    users = bot.users(count)
    calls, cpu = bench.bot_api_calls(bot.fake), cpu_seconds(bot.pid)
    rate, updates = await bench.timed(users, bot.report)
    latencies = [await bot.latency_ms(u) for u in users]
    cpu = cpu_seconds(bot.pid) - cpu
    calls = bench.bot_api_calls(bot.fake) - calls
    return rate, cpu * 1000 / updates, calls / updates, latencies


async def _p1(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from harness import prepared_db

    import bench

    users = [100_000 + u for u in range(args.residents)]
    echo, _ = await bench.echo_rate(users)
    db = await prepared_db(tmp / f"p1-{time.monotonic_ns()}.db")
    async with bench.RunningBot(db, tmp) as bot:
        await bot.rate(bench.WARM_UP)
        rate, cpu, calls, _ = await _bot_rate(bot, args.residents)
        idle, _ = await bot.latencies(args.probes)
        loaded: dict[str, float] = {}
        if args.p2_load:
            found, achieved = await bot.latencies(args.probes, background=args.load)
            loaded = {"p2_load_p95": bench.pct(found, 95), "p2_load_rate": achieved}
    return {
        "p1_rate": rate,
        "p1_cpu": cpu,
        "p1_echo": echo,
        "p1_vs_echo": rate / echo,
        "p1_calls": calls,
        "p2_idle_p50": bench.pct(idle, 50),
        "p2_idle_p95": bench.pct(idle, 95),
        **loaded,
    }


async def _p3(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    import bench

    paced, n429, _ = await bench.broadcast(args.paced, bench.ChannelLimits.rates(30, 20, 1), tmp)
    ceiling, _, ceiling_cpu = await bench.broadcast(10_000, None, tmp, null_sender=True)
    e2e, _, e2e_cpu = await bench.broadcast(3_000, None, tmp)
    return {
        "p3_paced": paced / 30,
        "p3_429": n429,
        "p3_ceiling": ceiling,
        "p3_ceiling_cpu": ceiling_cpu / 10_000 * 1e6,
        "p3_e2e": e2e,
        "p3_e2e_cpu": e2e_cpu / 3_000 * 1e6,
    }


async def _p4(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """The bot on a copy of the seeded database (each round's residents are new to it)."""
    import bench

    copy = _sqlite_files(tmp / GROWN, tmp / f"p4-{time.monotonic_ns()}.db")
    try:
        async with bench.RunningBot(f"sqlite+aiosqlite:///{copy}", tmp) as bot:
            await bot.rate(bench.WARM_UP)
            rate, cpu, _, _ = await _bot_rate(bot, args.residents)
            idle, _ = await bot.latencies(args.probes)
    finally:
        _sqlite_files(copy, None)
    return {"p4_rate": rate, "p4_cpu": cpu, "p4_p95": bench.pct(idle, 95)}


def _sqlite_files(source: Path, copy: Path | None) -> Path:
    """Copy an SQLite database with its WAL files to ``copy``; or remove it (``copy`` None)."""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{source}{suffix}")
        if copy is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            shutil.copyfile(path, Path(f"{copy}{suffix}"))
    return copy or source


async def _p5(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    import memory

    folder = tmp / f"p5-{time.monotonic_ns()}"
    folder.mkdir()
    idle, now, peak, _ = await memory.measure(args.conversations, folder)
    return {"p5_idle": idle, "p5_busy": now, "p5_peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", default=BASELINE, help="the commit before (default %(default)s)"
    )
    parser.add_argument("--after", default="HEAD", help="the commit after (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(GROUPS), help="checks, e.g. p1,p3")
    parser.add_argument("--residents", type=int, default=50, help="P1: residents at once")
    parser.add_argument("--probes", type=int, default=30, help="P2: reports timed per round")
    parser.add_argument("--load", type=float, default=200, help="P2: background updates/s")
    parser.add_argument(
        "--p2-load", action="store_true", help="P2 under background load too (a quiet machine)"
    )
    parser.add_argument("--paced", type=int, default=300, help="P3: recipients at 30 msg/s")
    parser.add_argument("--p4-full", action="store_true", help="P4 at the issue's size")
    parser.add_argument("--p5-full", action="store_true", help="P5 with 10,000 drafts")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where trees go")
    parser.add_argument("--keep", action="store_true", help="keep the trees for the next run")
    parser.add_argument("--json", help="also write every round's values to this file")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per check")
    # inside a tree (run by the comparison itself)
    parser.add_argument("--probe", choices=[*GROUPS, "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--reports", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--contacts", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--conversations", type=int, default=1_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args)
        return
    if args.p4_full:
        args.reports, args.contacts = 1_000_000, 100_000
    if args.p5_full:
        args.conversations = 10_000
    compare(args)


if __name__ == "__main__":
    main()
