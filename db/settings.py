"""Database settings: where Wangge's PostgreSQL lives.

Read from the environment when a command starts, never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """``DATABASE_URL`` selects an external server; without it Wangge runs its own.

    ``WANGGE_DATA_DIR`` is the embedded cluster's data directory (default
    ``var/pg`` in the repository), ``WANGGE_DB_PORT`` its port number (the
    cluster listens on a unix socket in the data directory only, so the port
    just names the socket and cannot clash with another server's TCP port).
    """

    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "WANGGE_DATABASE_URL")
    )
    data_dir: Path = REPO_ROOT / "var" / "pg"
    db_port: int = 54329
    pg_bindir: Path | None = None
