"""`make run`: the whole stack on this machine, in the foreground.

Starts what DATABASE_URL / REDIS_URL / CHAIN_RPC_URL do not point at (embedded PostgreSQL,
Redis with AOF, anvil with the dev contracts and a funded gateway), migrates, builds the tiny demo models, writes an API key to .run/api_key and an
admin key to .run/admin_key, then runs the Procfile with honcho. Ctrl-C stops everything
it started; the data stays under .run/ for the next run.
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from devstack.chain import run_chain
from devstack.servers import Postgres, Redis, python_env

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
GATEWAY_PORT = os.environ.get("GATEWAY_PORT", "8935")


def secret_file(path: Path) -> str:
    """A secret made once and kept, so media URLs survive a restart."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def flower_auth(path: Path) -> str:
    """Flower's user:password, made once (curl -u "$(cat .run/flower_auth)" ...)."""
    if not path.exists():
        path.write_text(f"admin:{secrets.token_urlsafe(18)}")
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_key(env: dict, path: Path, name: str, admin: bool) -> None:
    """Keeps a key file that still opens the database; makes a new one otherwise."""
    from app.api.auth import create_key, hash_key
    from app.store.db import make_sessionmaker, transaction
    from app.store.tables import ApiKey
    from sqlalchemy import select

    sessions = make_sessionmaker(env["DATABASE_URL"])
    with transaction(sessions) as session:
        if path.exists():
            found = session.scalar(select(ApiKey).where(
                ApiKey.key_hash == hash_key(path.read_text().strip()),
                ApiKey.revoked_at.is_(None)))
            if found is not None:
                return
        key = create_key(session, name, "admin" if admin else "user")
    path.write_text(key + "\n")
    path.chmod(0o600)


def ensure_operator(env: dict, path: Path) -> dict:
    """The demo's operator (its Redis user and key), made once and kept in a file:
    the environment of the worker and redeemer."""
    from app import operators
    from app.store.db import make_sessionmaker, transaction
    from tasks.connections import redis_client

    redis = redis_client(env["REDIS_URL"])
    if path.exists():
        kept = dict(line.split("=", 1) for line in path.read_text().split())
        user = f"operator-{kept['OPERATOR_ID']}"
        if redis.execute_command("ACL", "GETUSER", user) is not None:
            return kept
    with transaction(make_sessionmaker(env["DATABASE_URL"])) as session:
        credentials = operators.create(session, redis, env["OPERATOR_KEYS_SECRET"].encode(),
                                       env["REDIS_URL"], f"dev-{secrets.token_hex(3)}",
                                       env["OPERATOR_ADDRESS"])
    lines = credentials.env_lines()
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return dict(line.split("=", 1) for line in lines)


def prepare(env: dict) -> None:
    from app.store.db import upgrade_database
    from devstack.tiny import build_missing

    upgrade_database(env["DATABASE_URL"])
    build_missing(Path(env["MODELS_DIR"]))
    ensure_key(env, RUN / "api_key", "dev", admin=False)
    ensure_key(env, RUN / "admin_key", "dev-admin", admin=True)
    operator = ensure_operator(env, RUN / "operator.env")
    env.update(OPERATOR_ID=operator["OPERATOR_ID"], OPERATOR_TOKEN=operator["OPERATOR_TOKEN"],
               WORKER_REDIS_URL=operator["REDIS_URL"])


def main() -> int:
    # `kill`, `docker stop`: stop as Ctrl-C does, servers and all (Python's default for
    # SIGTERM ends at once, leaving PostgreSQL, Redis and anvil running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RUN.mkdir(exist_ok=True)
    started = []
    env = {
        "MODELS_FILE": os.environ.get("MODELS_FILE", str(ROOT / "models.json")),
        "MODELS_DIR": os.environ.get("MODELS_DIR", str(RUN / "models")),
        "MEDIA_DIR": os.environ.get("MEDIA_DIR", str(RUN / "media")),
        "MEDIA_SECRET": os.environ.get("MEDIA_SECRET") or secret_file(RUN / "media_secret"),
        "OPERATOR_KEYS_SECRET": os.environ.get("OPERATOR_KEYS_SECRET")
        or secret_file(RUN / "operator_keys_secret"),
        "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET") or secret_file(RUN / "webhook_secret"),
        "GATEWAY_PORT": GATEWAY_PORT,
        # Operating it: the dashboard's cookie key, Flower's login, the gateway's
        # Prometheus files (one per gunicorn worker).
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secret_file(RUN / "secret_key"),
        "FLOWER_BASIC_AUTH": os.environ.get("FLOWER_BASIC_AUTH")
        or flower_auth(RUN / "flower_auth"),
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        or str(RUN / "prometheus"),
    }
    try:
        if "DATABASE_URL" not in os.environ:
            started.append(Postgres(RUN / "postgres"))
            env["DATABASE_URL"] = started[-1].url
        if "REDIS_URL" not in os.environ:
            started.append(Redis(RUN / "redis", int(os.environ.get("REDIS_PORT", "6390"))))
            env["REDIS_URL"] = started[-1].url
        # The chain: anvil with its state under .run/chain, unless CHAIN_RPC_URL is set.
        anvil, chain_env = run_chain(RUN / "chain", secret_file(RUN / "operator_secret"))
        started += [anvil] if anvil else []
        env.update(chain_env)
        env = {**{k: os.environ[k] for k in ("DATABASE_URL", "REDIS_URL") if k in os.environ},
               **env}
        prepare(env)
        (RUN / "env").write_text("".join(f"export {k}='{v}'\n" for k, v in env.items()))
        print(banner(), flush=True)
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f",
                                   str(ROOT / "Procfile")], env=python_env(env), cwd=ROOT)
        signal.signal(signal.SIGINT, lambda *_: None)  # honcho hears Ctrl-C and stops all
        signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())  # and is told of SIGTERM
        return honcho.wait()
    finally:
        for server in reversed(started):
            server.stop()


def banner() -> str:
    url = f"http://127.0.0.1:{GATEWAY_PORT}"
    return f"""
Gateway {url}   Flower http://127.0.0.1:5555   (keys in .run/api_key, .run/admin_key)
Flower's login is in .run/flower_auth; the dashboard opens with the admin key:
  {url}/dashboard   Prometheus: {url}/metrics, recorder :9400, workers from :9410
Make an image (once the worker says it is ready):
  curl -s {url}/text-to-image -H "Authorization: Bearer $(cat .run/api_key)" \\
    -H 'Content-Type: application/json' \\
    -d '{{"prompt": "a lighthouse at dawn", "width": 128, "height": 128, "num_inference_steps": 4}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["url"])' \\
    | xargs curl -s -o image.png && echo saved image.png
All nine pipelines are served with tiny models (models.json); README.md has a curl for each.
"""


if __name__ == "__main__":
    sys.exit(main())
