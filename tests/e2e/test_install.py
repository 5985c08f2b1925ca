"""`pip install .` into a fresh virtual environment gives a working `imagebot` command (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import bot

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str | Path], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_pip_install_gives_a_working_imagebot_command(tmp_path: Path) -> None:
    # Build from a copy, so the checkout gets no build/ or egg-info folders; tests/ and bench/ come along to
    # prove that only bot and cogs are installed.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("bot", "cogs", "tests", "bench"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)  # pip, setuptools and the dependencies come from the .pth below
    python = target / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path))
    # The dependencies, pip and setuptools (to build without isolation) come from the test environment: offline.
    (site / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation", source], tmp_path
    )

    assert run([target / "bin" / "imagebot", "--version"], tmp_path) == f"imagebot {bot.__version__}"
    assert run([python, "-m", "bot", "--version"], tmp_path) == f"imagebot {bot.__version__}"
    installed = run([python, "-c", "import bot, cogs.info; print(bot.__file__)"], tmp_path)
    assert installed.startswith(str(site))
    assert sorted(p.name for p in site.iterdir() if (p / "__init__.py").exists()) == ["bot", "cogs"]
    assert (site / "bot" / "ops" / "metrics.py").exists()
    # The catalogues ship as package data, and an installed bot speaks Chinese.
    assert (site / "bot" / "i18n" / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po").exists()
    said = run([python, "-c", "from bot.i18n import t; print(t('zh-CN', 'credits.count', count=3))"], tmp_path)
    assert said == "3 积分"
