"""Passwords and tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
second recommended profile); a hash is never logged or returned. Tokens are
JWTs (HS256) naming the account (``sub``), the account's ``token_version``
(``ver``: bumped when the account is disabled or its password changes, which
revokes every earlier token) and a unique ``jti`` (revoked one by one at
logout); they expire after ``token_minutes``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.settings import AuthSettings

_HASHER = PasswordHasher()
ALGORITHM = "HS256"
MIN_PASSWORD_CHARS = 8


class TokenError(Exception):
    """The token is malformed, forged or expired."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int
    jti: str
    expires_at: dt.datetime


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_verify() -> None:
    """Spend a verification's time when the account does not exist, so the
    response time does not tell which names exist."""
    verify_password("not-a-password", _DUMMY_HASH)


_DUMMY_HASH = _HASHER.hash("a password nobody has")


def secret_key(settings: AuthSettings) -> str:
    """The signing key: the configured one, else the one kept in ``secret_file``
    (created, readable by the owner only, on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path: Path = settings.secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def issue_token(
    *, user_id: int, version: int, settings: AuthSettings, now: dt.datetime | None = None
) -> tuple[str, TokenClaims]:
    now = now or dt.datetime.now(dt.UTC)
    claims = TokenClaims(
        user_id=user_id, version=version, jti=secrets.token_hex(16),
        expires_at=now + dt.timedelta(minutes=settings.token_minutes),
    )  # fmt: skip
    token = jwt.encode(
        {"sub": str(user_id), "ver": version, "jti": claims.jti, "iat": now,
         "exp": claims.expires_at},
        secret_key(settings), algorithm=ALGORITHM,
    )  # fmt: skip
    return token, claims


def read_token(token: str, *, settings: AuthSettings) -> TokenClaims:
    try:
        payload = jwt.decode(
            token, secret_key(settings), algorithms=[ALGORITHM],
            options={"require": ["sub", "ver", "jti", "exp"]},
        )  # fmt: skip
        return TokenClaims(
            user_id=int(payload["sub"]), version=int(payload["ver"]), jti=str(payload["jti"]),
            expires_at=dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC),
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired: log in again") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenError("the token is not valid: log in again") from None
