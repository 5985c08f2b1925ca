"""Settings, read from the environment and `.env` when `Settings()` is built (never at import time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.providers.catalog import ALL_RESOLUTIONS, MODELS, TEXT_TO_IMAGE_MODELS
from bot.quota.policy import Limit, Period, Source, parse_limit

# Credits per image, by model or model:resolution; anything not listed costs 1 per image.
DEFAULT_COSTS = {
    "nano-banana-2:2K": 2,
    "nano-banana-2:4K": 3,
    "nano-banana-pro": 2,
    "nano-banana-pro:2K": 3,
    "nano-banana-pro:4K": 4,
    "gpt-image-2": 2,
    "gpt-image-2:2K": 3,
    "gpt-image-2:4K": 4,
}
PROVIDER_NAMES = ("hub", "gemini", "mindvideo")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

PLACEHOLDER_PREFIX = "paste-your-"  # what .env.example holds until the owner fills in real values

PositiveFloat = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    """Every setting the bot reads. Environment names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    discord_token: SecretStr
    mountsea_api_key: SecretStr | None = None
    mountsea_base_url: str = "https://api.mountsea.ai"
    # Validated even when unset: at least one image service key must be given.
    mindvideo_api_key: SecretStr | None = Field(default=None, validate_default=True)
    mindvideo_base_url: str = "https://api.mindvideo.ai"
    # NoDecode: the JSON is parsed by the validators below, so a typo is one clear line, not a traceback.
    provider_order: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)
    database_path: Path = Path("data/bot.db")
    # postgresql://user:password@host:port/db — shared by several bot processes; SQLite at DATABASE_PATH if unset.
    database_url: SecretStr | None = None
    # Gateway sharding: SHARD_COUNT shards in all, of which this process runs SHARD_IDS (comma-separated).
    shard_count: Annotated[int, Field(ge=1)] | None = None
    shard_ids: Annotated[list[int] | None, NoDecode] = None
    # Whether this process syncs application commands; by default the one running shard 0 (or the only one).
    sync_commands: bool | None = None
    dev_guild_id: int | None = None
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    message_content_intent: bool = False
    http_port: Annotated[int, Field(ge=0, le=65535)] | None = None  # 0: any free port
    http_host: str = "127.0.0.1"
    model_refresh_seconds: Annotated[float, Field(ge=60)] = 3600.0
    result_urls_allow_private: bool = False  # only for image services on a local network (test servers)

    default_model: str = "nano-banana"
    job_deadline_seconds: PositiveFloat = 600.0
    max_active_jobs: Annotated[int, Field(ge=1, le=10_000)] = 1000
    poll_min_interval_seconds: PositiveFloat = 0.2
    poll_max_interval_seconds: PositiveFloat = 15.0
    http_timeout_seconds: PositiveFloat = 30.0
    provider_max_retries: Annotated[int, Field(ge=0, le=10)] = 4
    provider_retry_base_seconds: PositiveFloat = 1.0
    status_edit_min_interval_seconds: Annotated[float, Field(ge=0)] = 2.0
    job_lease_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 30.0

    quota_default_limit: str = "25"
    quota_default_period: Period = Period.DAY
    quota_costs: Annotated[dict[str, Annotated[int, Field(ge=0)]], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_COSTS)
    )
    quota_allow_dms: bool = True
    max_running_jobs_per_user: Annotated[int, Field(ge=1, le=100)] = 2
    max_waiting_jobs_per_user: Annotated[int, Field(ge=0, le=1000)] = 5

    @field_validator("discord_token", "mountsea_api_key", "mindvideo_api_key")
    @classmethod
    def _not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().startswith(PLACEHOLDER_PREFIX):
            raise ValueError("still holds the .env.example placeholder; paste the real value")
        return value

    @field_validator("discord_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("provider_order", "quota_costs", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return upper

    @field_validator("default_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in TEXT_TO_IMAGE_MODELS:
            raise ValueError(f"must be one of {', '.join(TEXT_TO_IMAGE_MODELS)}")
        return value

    @field_validator("quota_default_limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError("must be a whole number of credits or 'unlimited'") from None
        return value

    @field_validator("quota_costs")
    @classmethod
    def _cost_keys(cls, value: dict[str, int]) -> dict[str, int]:
        for key in value:
            model, _, resolution = key.partition(":")
            if model not in MODELS or (resolution and resolution not in ALL_RESOLUTIONS):
                raise ValueError(f"unknown model or resolution in {key!r} (use e.g. nano-banana-pro:4K)")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [int(part) for part in value.split(",") if part.strip()]
            except ValueError:
                raise ValueError("must be shard numbers separated by commas, e.g. 0,1") from None
        return value

    @field_validator("shard_ids")
    @classmethod
    def _within_count(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if value is None:
            return value
        count = info.data.get("shard_count")
        if count is None:
            raise ValueError("needs SHARD_COUNT")
        if not value or any(not 0 <= i < count for i in value):
            raise ValueError(f"each shard must be between 0 and SHARD_COUNT - 1 ({count - 1})")
        return value

    @property
    def syncs_commands(self) -> bool:
        """Only one process syncs: the one told to, else the one running shard 0."""
        if self.sync_commands is not None:
            return self.sync_commands
        return self.shard_ids is None or 0 in self.shard_ids

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def database_target(self) -> str | Path:
        """Where the database is: the PostgreSQL URL when given, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url is not None else self.database_path

    def default_limit(self) -> Limit:
        return Limit(parse_limit(self.quota_default_limit), self.quota_default_period, Source.BOT)

    @field_validator("provider_order")
    @classmethod
    def _known_providers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for family, names in value.items():
            if family not in TEXT_TO_IMAGE_MODELS:
                raise ValueError(f"unknown model family {family!r}")
            unknown = set(names) - set(PROVIDER_NAMES)
            if unknown or not names:
                raise ValueError(f"providers must be some of {', '.join(PROVIDER_NAMES)}")
        return value

    @field_validator("mountsea_api_key", "mindvideo_api_key")
    @classmethod
    def _blank_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("mindvideo_api_key")
    @classmethod
    def _an_image_service(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        mountsea_ok = "mountsea_api_key" in info.data  # absent when it failed its own checks
        if value is None and mountsea_ok and info.data["mountsea_api_key"] is None:
            raise ValueError("or MOUNTSEA_API_KEY must be set (at least one image service)")
        return value

    @field_validator("mountsea_base_url", "mindvideo_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad setting by its environment name, never echoing its value."""
    parts: list[str] = []
    for item in error.errors():
        if not item["loc"]:  # a rule across settings: its message names them
            parts.append(item["msg"].removeprefix("Value error, "))
            continue
        name = str(item["loc"][0]).upper()
        if item["type"] == "missing":
            parts.append(f"{name} is required")
        else:
            parts.append(f"{name} {item['msg'].removeprefix('Value error, ')}")
    return "Configuration error: " + "; ".join(parts) + " (set it in .env or the environment)"
