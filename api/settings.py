"""HTTP-side settings (env prefix ``WANGGE_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


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
