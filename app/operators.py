"""GPU operators: registered by the gateway's admin, each with its own least-privilege
Redis user and its own key, so that the gateway believes of an operator only what it
can prove, and an operator can reach nothing of the gateway's or of other operators'.

What an operator's Redis user may do (Redis 7 ACL selectors; app/operators.py is the one
place that says it, and tests/security/ tries each thing it may not):
- take jobs: BRPOP/LPUSH/LLEN on the job queues (every pipeline's `<pipeline>:*`), its
  slots' own queues (`worker.<id>.*`) and its payments queue (`payments:<address>`);
- keep kombu's delivery bookkeeping: the shared `unacked`, `unacked_index` and
  `unacked_mutex` keys, and read the queue bindings (`_kombu.binding.*`);
- read (only) the jobs' control records (`job:*:ctl`), to skip stale deliveries and
  stop a run the gateway canceled or gave to another worker;
- append to its own events stream (`events:operator-<id>`), the only way it tells the
  gateway anything; write its slots' heartbeats (`worker:<id>:*`);
- publish Celery's task and worker events (Flower shows them).
Nothing else: no other key, channel or command (no CONFIG, FLUSHALL, ACL, KEYS, SCAN,
SELECT, no pub/sub of job events, no control records, no `gateway:*` key)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ResponseError
from sqlalchemy import select

from app.store.tables import Operator
from chain.codec import to_address
from tasks import envelope, names
from tasks.pipelines import PIPELINES

log = logging.getLogger(__name__)
# How long a revoked operator's messages may still be believed by a recorder that has not
# heard of it: its Redis user is gone at once, so none can be new.
KEYS_REFRESH_SECONDS = 2.0


class OperatorError(ValueError):
    pass


@dataclass(frozen=True)
class Credentials:
    """What `operators create` prints once: the operator's processes' settings."""

    operator_id: int
    redis_url: str
    token: str  # hex of the signing key

    def env_lines(self) -> list[str]:
        return [f"OPERATOR_ID={self.operator_id}", f"OPERATOR_TOKEN={self.token}",
                f"REDIS_URL={self.redis_url}"]


def acl_rules(operator_id: int, address: str) -> list[str]:
    """The ACL SETUSER rules of an operator's user, after its password."""
    lists = [f"~{pipeline}:*" for pipeline in sorted(PIPELINES)]
    lists += [f"~{names.worker_queue(operator_id, '*')}", f"~{names.payments_queue(address)}*"]
    return [
        "resetkeys", "resetchannels", "-@all",
        "+ping", "+hello", "+auth", "+client|setname", "+client|id",
        "+script|exists", "+script|load", "+multi", "+exec", "+discard", "+publish",
        "&/0.celeryev/*",
        f"(+brpop +lpush +rpush +llen {' '.join(lists)})",
        "(+hset +hdel +hget +zadd +zrem +zrange +zrangebyscore +zrevrangebyscore +set +get"
        " +del +expire +pexpire +exists +eval +evalsha ~unacked ~unacked_index ~unacked_mutex)",
        "(+smembers %R~_kombu.binding.*)",
        f"(+hget +hmget +hgetall %R~{names.job_control_key('*')})",
        f"(+xadd ~{names.operator_events(operator_id)})",
        f"(+set +get +del +expire ~{names.worker_key(operator_id, '*')})",
    ]


def operator_redis_url(base_url: str, user: str, password: str) -> str:
    """The broker URL as the operator's processes reach it, as its user."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/0", parts.query, ""))


def create(session, redis, keys_secret: bytes, base_url: str, name: str,
           address: str) -> Credentials:
    """Registers an operator and makes its Redis user; the credentials are shown once."""
    if session.scalar(select(Operator.id).where(Operator.name == name)) is not None:
        raise OperatorError(f"an operator named {name!r} exists")
    try:
        address = to_address(address)
    except ValueError as exc:
        raise OperatorError(str(exc)) from None
    operator = Operator(name=name, address=address)
    session.add(operator)
    session.flush()  # its id
    password = secrets.token_urlsafe(32)
    user = names.operator_user(operator.id)
    redis.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}",
                          *acl_rules(operator.id, address))
    save_users(redis)
    redis.publish(names.OPERATORS_CHANGED, str(operator.id))
    key = envelope.operator_key(keys_secret, operator.id)
    return Credentials(operator.id, operator_redis_url(base_url, user, password), key.hex())


def revoke(session, redis, operator_id: int, now) -> Operator:
    """Ends an operator: its Redis user and connections at once, and the gateway
    believes none of its messages from now on."""
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise OperatorError(f"no operator {operator_id}")
    operator.revoked_at = operator.revoked_at or now
    user = names.operator_user(operator_id)
    redis.execute_command("ACL", "DELUSER", user)
    save_users(redis)
    try:
        redis.execute_command("CLIENT", "KILL", "USER", user)
    except ResponseError:  # none connected
        pass
    redis.publish(names.OPERATORS_CHANGED, str(operator_id))
    return operator


def save_users(redis) -> None:
    """Writes the users to Redis' ACL file, so they survive a restart; a server with
    none configured (no `aclfile`) keeps them in memory only, and says so."""
    try:
        redis.execute_command("ACL", "SAVE")
    except ResponseError as exc:
        log.warning("Redis keeps operators' users in memory only (%s): give it an aclfile", exc)


class OperatorKeys:
    """The signing keys of the operators in good standing, as the recorder checks
    messages against them; read from PostgreSQL, again every KEYS_REFRESH_SECONDS and
    whenever an unknown operator shows up."""

    def __init__(self, sessions, keys_secret: bytes, clock=time.monotonic):
        self.sessions = sessions
        self.keys_secret = keys_secret
        self.clock = clock
        self._active: dict[int, str] = {}  # id -> address
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, operator_id: int) -> bytes | None:
        if operator_id not in self._fresh():
            self._refresh()
        if operator_id not in self._active:
            return None
        return envelope.operator_key(self.keys_secret, operator_id)

    def address_of(self, operator_id: int) -> str | None:
        return self._fresh().get(operator_id)

    def active(self) -> dict[int, str]:
        return dict(self._fresh())

    def _fresh(self) -> dict[int, str]:
        if self.clock() - self._read_at > KEYS_REFRESH_SECONDS:
            self._refresh()
        return self._active

    def _refresh(self) -> None:
        with self._lock, self.sessions() as session:
            rows = session.execute(select(Operator.id, Operator.address)
                                   .where(Operator.revoked_at.is_(None)))
            self._active = {operator_id: address for operator_id, address in rows}
            self._read_at = self.clock()
