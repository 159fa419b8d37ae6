"""Bearer API keys, stored as SHA-256 hashes: a leaked table leaks no key. Each gateway
process keeps the keys it has seen (app/api/keys.py), so that a request costs no
database query, and no Redis read while the process hears of revokes."""

import hashlib
import secrets

from flask import g, request
from sqlalchemy import select

from app import extensions as ext
from app.api import limits
from app.api.errors import ApiError
from app.api.keys import Key
from app.store.tables import ApiKey

KEY_PREFIX = "lpk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(session, name: str, role: str = "user", rate_limit_per_minute=None,
               daily_job_quota=None) -> str:
    """Stores a new key's hash and returns the key: the only time it is ever shown."""
    key = new_key()
    session.add(ApiKey(name=name, key_hash=hash_key(key), prefix=key[:10], role=role,
                       rate_limit_per_minute=rate_limit_per_minute,
                       daily_job_quota=daily_job_quota))
    return key


def _load_key(key_hash: str) -> Key | None:
    # A session of its own, its connection back at once: the request goes on to wait for
    # its turn in groups (app/groups.py) whose leaders need connections of the same pool.
    with ext.new_session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash,
                                                  ApiKey.revoked_at.is_(None)))
        return Key.of(row) if row is not None else None


def _unauthorized(msg: str) -> ApiError:
    return ApiError(401, msg, {"WWW-Authenticate": "Bearer"})


def authenticate(role: str | None = None) -> Key:
    """The request's key, or a 401. A lookup by hash is a constant-time comparison of the
    secret: the database (or the cache) compares digests, never the key itself."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("Invalid bearer token.")
    ext.hub().start()  # its subscription tells the key cache of revokes (app/api/keys.py)
    found = ext.keys().lookup(ext.redis(), hash_key(key.strip()), _load_key)
    if found is None:
        raise _unauthorized("Invalid bearer token.")
    if role is not None and found.role != role:
        raise ApiError(403, "This key may not do that.")
    limits.check_rate(ext.shared_redis().execute, found, ext.settings().rate_limit_per_minute)
    g.api_key = found
    return found
