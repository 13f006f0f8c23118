"""Access tokens: short-lived signed JWTs (PyJWT, HS256) that carry the principal, so the hot
paths (WADO, worklist) authorise without a database round trip. Refresh tokens are opaque random
strings kept hashed in the database, one use each."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import jwt

from radrelay.auth.schemas import Principal, Role
from radrelay.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "radrelay"


def issue_access_token(principal: Principal, secret: str, now: datetime, ttl: timedelta) -> str:
    claims = {
        "iss": ISSUER,
        "sub": str(principal.user_id),
        "usr": principal.username,
        "role": principal.role.value,
        "hid": principal.hospital_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, secret: str, ip: str = "") -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "role", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("The access token has expired: refresh it or sign in again.") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("The access token is not valid.") from exc
    if claims.get("typ") != "access":
        raise Unauthenticated("This is not an access token.")
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthenticated("The access token names an unknown role.") from exc
    return Principal(
        user_id=int(claims["sub"]),
        username=str(claims.get("usr", "")),
        role=role,
        hospital_id=claims.get("hid"),
        ip=ip,
    )


def new_refresh_token() -> tuple[str, str]:
    """(token to give the client, its hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
