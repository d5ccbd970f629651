"""bench/compare.py's verdicts and table, on given numbers (no timing), and its adapter for an
older tree's module paths."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compare.py"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def figure(compare: ModuleType, key: str) -> object:
    return next(f for f in compare.FIGURES if f.key == key)


def test_a_drop_larger_than_the_rounds_spread_is_worse_beyond_noise(compare: ModuleType) -> None:
    row = compare.judge(figure(compare, "p1_rate"), [400, 410, 395], [330, 335, 320])
    assert (row.before, row.after) == (400, 330)
    assert row.ratio == pytest.approx(0.825)
    assert row.noise == pytest.approx(335 / 320)  # the larger of the two sides
    assert row.verdict == "**worse beyond noise**"


def test_a_difference_inside_the_rounds_spread_is_within_noise(compare: ModuleType) -> None:
    # after is 5% lower, but before's own rounds differ by 30%
    row = compare.judge(figure(compare, "p1_rate"), [400, 520, 380], [380, 470, 360])
    assert row.ratio == pytest.approx(0.95)
    assert row.verdict == "within noise"


def test_lower_is_better_figures_are_judged_the_other_way(compare: ModuleType) -> None:
    cpu = figure(compare, "p1_cpu")
    assert compare.judge(cpu, [2.0, 2.1, 2.05], [2.6, 2.5, 2.55]).verdict == (
        "**worse beyond noise**"
    )
    assert compare.judge(cpu, [2.0, 2.1, 2.05], [1.5, 1.6, 1.55]).verdict == ("better beyond noise")
    rate = figure(compare, "p1_rate")
    assert compare.judge(rate, [2.0, 2.1, 2.05], [2.6, 2.5, 2.55]).verdict == (
        "better beyond noise"
    )


def test_counts_that_stay_zero_agree_and_new_429s_are_worse(compare: ModuleType) -> None:
    n429 = figure(compare, "p3_429")
    same = compare.judge(n429, [0, 0, 0], [0, 0, 0])
    assert (same.ratio, same.noise, same.verdict) == (1.0, 1.0, "within noise")
    new = compare.judge(n429, [0, 0, 0], [2, 3, 2])
    assert new.ratio == float("inf")
    assert new.verdict == "**worse beyond noise**"
    once = compare.judge(n429, [0, 0, 0], [0, 4, 0])  # one round out of three: the median is 0
    assert once.verdict == "within noise"


def test_a_figure_one_tree_could_not_give_says_so(compare: ModuleType) -> None:
    row = compare.judge(figure(compare, "p5_idle"), [95.0, 96.0], None, "exit 1: ImportError")
    assert (row.before, row.after, row.ratio) == (95.5, None, None)
    assert row.verdict == "not measured on the after tree (exit 1: ImportError)"
    neither = compare.judge(figure(compare, "p5_idle"), None, [])
    assert neither.verdict == "not measured on either tree"


def test_a_single_round_gives_no_verdict(compare: ModuleType) -> None:
    row = compare.judge(figure(compare, "p3_ceiling"), [12_000], [9_000])
    assert row.ratio == pytest.approx(0.75)
    assert row.verdict == "one round: no spread to judge by"


def test_the_table_lists_each_figure_with_medians_ratio_noise_and_verdict(
    compare: ModuleType,
) -> None:
    results = {
        "before": {"p1_rate": [400, 410, 395], "p1_cpu": [2.4, 2.5, 2.45]},
        "after": {"p1_rate": [402, 399, 405], "p1_cpu": [2.45, 2.5, 2.5]},
    }
    rows = compare.rows_from(
        results,
        {"p5_idle": "after: timed out after 600 s"},
        {"p2_load_p95": "--p2-load"},
    )
    text = compare.table(rows).splitlines()
    assert text[0].startswith("| figure | before | after | ratio after/before |")
    assert len(text) == 2 + len(compare.FIGURES)
    assert (
        "| P1 ktn-bot, 50 residents at once (updates/s), higher is better | 400 | 402 | 1.00 "
        "| ×1.04 | within noise |" in text
    )
    assert (
        "| P1 ktn-bot CPU per update (bot process) (ms), lower is better | 2.45 | 2.5 | 1.02 "
        "| ×1.04 | within noise |" in text
    )
    assert (
        "| P2 under background load, p95 (ms), lower is better | — | — | — | — | "
        "not run: --p2-load |" in text
    )
    assert (
        "| P5 RSS idle (MB), lower is better | — | — | — | — | not measured on either tree "
        "(after: timed out after 600 s) |" in text
    )


def test_an_older_tree_gets_the_current_module_paths_as_re_exports(
    compare: ModuleType, tmp_path: Path
) -> None:
    """The harness imports e.g. bot.delivery.dispatcher; on a tree from before issue 10 that is
    bot/outbox.py: a re-export is written, a module the tree has itself is left alone."""
    tree = tmp_path / "tree"
    (tree / "bench").mkdir(parents=True)
    (tree / "handlers").mkdir()
    (tree / "tests" / "support").mkdir(parents=True)
    files = {
        "bot/__init__.py": "",
        "bot/outbox.py": "Dispatcher = Envelope = ChannelLimits = 'old outbox'\n",
        "bot/telegram.py": "TelegramSender = PerUserProcessor = 'old telegram'\n",
        "bot/telegram_channel.py": "send_request = 'old channel'\n",
        "bot/telegram_fake/__init__.py": "DEFAULT_TOKEN = TelegramFake = 'old fake'\n",
        "bot/sandbox/__init__.py": "",
        "handlers/__init__.py": "",
        "handlers/testing.py": "SUMBER_JAYA = load_areas = 'old testing'\n",
        "tests/__init__.py": "",
        "tests/support/chats.py": "SUMBER_JAYA = load_areas = 'its own'\n",
    }
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    side = compare.Side("before", "old", tree, Path(sys.executable))
    compare.install_harness(side)
    assert (tree / "bench" / "compare.py").read_text() == SCRIPT.read_text()
    assert (
        tree / "tests" / "support" / "chats.py"
    ).read_text() == "SUMBER_JAYA = load_areas = 'its own'\n"
    assert "tests/support/chats.py <- handlers.testing" not in side.shims
    check = (
        "from bot.delivery.dispatcher import Dispatcher, Envelope\n"
        "from bot.delivery.windows import ChannelLimits\n"
        "from bot.channels.telegram.sender import TelegramSender\n"
        "from bot.channels.telegram.channel import PerUserProcessor, send_request\n"
        "from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake\n"
        "from tests.support.chats import SUMBER_JAYA\n"
        "print(Dispatcher, ChannelLimits, TelegramSender, PerUserProcessor, send_request,"
        " TelegramFake, SUMBER_JAYA, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=tree, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().split("|") == [
        "old outbox",
        "old outbox",
        "old telegram",
        "old telegram",
        "old channel",
        "old fake",
        "its own",
    ]
    # a second run (a kept tree) rewrites its own re-exports, still leaves the tree's modules
    compare.install_harness(compare.Side("before", "old", tree, Path(sys.executable)))
    assert (
        tree / "tests" / "support" / "chats.py"
    ).read_text() == "SUMBER_JAYA = load_areas = 'its own'\n"
