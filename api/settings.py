"""HTTP-side settings (env prefix ``WANGGE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ApiSettings(BaseSettings):
    """Caps and defaults of the HTTP API and the CLI that shares its logic."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 50 * 1024 * 1024
    max_inflated_bytes: int = 200 * 1024 * 1024
    max_vertices_per_feature: int = 100_000
    page_limit_default: int = 100
    page_limit_max: int = 1_000
    max_bbox_km2: float = 50_000.0  # a whole city; larger boxes are refused (422)


class AuthSettings(BaseSettings):
    """Logins and tokens (env prefix ``WANGGE_``).

    ``secret_key`` signs the tokens; without it one is generated on first use
    and kept in ``secret_file`` (mode 0600), so tokens survive a restart.
    """

    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    secret_key: str | None = None
    secret_file: Path = REPO_ROOT / "var" / "secret_key"
    token_minutes: int = 8 * 60  # one shift
    lockout_failures: int = 5
    lockout_minutes: int = 15
    requests_per_minute: int = 600  # per account
