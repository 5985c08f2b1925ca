from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import Settings, describe_settings_error

ROOT = Path(__file__).resolve().parents[2]


def run_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "MOUNTSEA_", "MINDVIDEO_", "DEV_GUILD"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_settings_print_one_clear_line_and_exit_non_zero(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DISCORD_TOKEN is required; MINDVIDEO_API_KEY or MOUNTSEA_API_KEY must be set "
        "(at least one image service) (set it in .env or the environment)"
    ]
    assert "Traceback" not in result.stderr


def test_invalid_values_are_named_and_secrets_never_echoed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=super-secret-token\nMOUNTSEA_API_KEY=key-123\n"
        "DEV_GUILD_ID=not-a-number\nMOUNTSEA_BASE_URL=ftp://x\n"
    )
    result = run_bot(tmp_path, {})
    assert result.returncode == 2
    assert "DEV_GUILD_ID" in result.stderr and "MOUNTSEA_BASE_URL" in result.stderr
    assert "super-secret-token" not in result.stderr + result.stdout and "key-123" not in result.stderr


def test_dotenv_is_read_when_settings_are_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "MOUNTSEA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("DISCORD_TOKEN=t\nMOUNTSEA_API_KEY=k\nDEFAULT_MODEL=gpt-image-2\n")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.default_model == "gpt-image-2"
    assert settings.mountsea_base_url == "https://api.mountsea.ai"
    assert str(settings.database_path) == "data/bot.db"
    assert "t" not in repr(settings.discord_token).replace("SecretStr", "").replace("*", "")


def test_error_text_for_unknown_model() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, discord_token="t", mountsea_api_key="k", default_model="nope")  # type: ignore[call-arg]
    assert "DEFAULT_MODEL must be one of nano-banana" in describe_settings_error(info.value)
