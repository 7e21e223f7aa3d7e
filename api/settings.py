"""HTTP-side settings (env prefix ``WANGGE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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


class BasemapSettings(BaseSettings):
    """The wall map's basemap (env prefix ``WANGGE_BASEMAP_``): ``none`` (the
    default: networks without internet), ``tianditu`` (needs ``tianditu_key``),
    ``xyz`` (``url``, a template with {z} {x} {y}, e.g. a tile server inside
    the network) or ``pmtiles`` (``pmtiles``, a raster archive Wangge serves
    at /basemap/{z}/{x}/{y}). ``crs``: the basemap's datum; with ``gcj02``
    the page asks for every geometry in GCJ-02."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_BASEMAP_", extra="ignore")

    kind: Literal["none", "tianditu", "xyz", "pmtiles"] = "none"
    crs: Literal["wgs84", "gcj02"] = "wgs84"
    tianditu_key: str | None = None
    url: str | None = None
    pmtiles: Path | None = None
    attribution: str = ""
    max_zoom: int = 18
