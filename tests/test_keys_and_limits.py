"""Keys: rate limits and daily quotas per key (429 with Retry-After), revocation, and the
schema in sync with the models."""

import pytest

from devstack.stack import wait_for
from support import leaked_secrets, make_key


@pytest.fixture
def client(app, worker):
    return app.test_client()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_rate_limit_per_key(client, sessions, auth):
    limited = bearer(make_key(sessions, "chatty", rate_limit_per_minute=3))
    answers = [client.get("/jobs/none", headers=limited).status_code for _ in range(4)]
    assert answers[:3] == [404, 404, 404]
    response = client.get("/jobs/none", headers=limited)
    assert response.status_code == 429 and 1 <= int(response.headers["Retry-After"]) <= 60
    assert client.get("/jobs/none", headers=auth).status_code == 404  # others unaffected


def test_daily_quota_counts_accepted_jobs(client, sessions):
    quota = bearer(make_key(sessions, "metered", daily_job_quota=1))
    body = {"prompt": "a cat", "width": 64, "height": 64, "num_inference_steps": 1}
    first = client.post("/text-to-image", json=body, headers={**quota,
                                                              "Prefer": "respond-async"})
    assert first.status_code == 202
    second = client.post("/text-to-image", json=body, headers=quota)
    assert second.status_code == 429 and "Daily quota of 1 jobs" in second.get_json()[
        "detail"]["msg"]
    assert int(second.headers["Retry-After"]) > 0


def test_revoked_key_is_refused(app, client, sessions):
    from sqlalchemy import select

    from app.api.auth import hash_key
    from app.store.tables import ApiKey

    key = make_key(sessions, "to-revoke")
    assert client.get("/jobs/none", headers=bearer(key)).status_code == 404
    with sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))
    # The process caches the key, and checks nothing in Redis on a hit once its hub
    # listens: the revoke's notice must reach it. (Without the notice the key would
    # live on in the cache for its 30 s.)
    keys = app.extensions["keys"]
    wait_for(lambda: keys.hears_revokes, timeout=10, what="the hub to subscribe")
    assert client.get("/jobs/none", headers=bearer(key)).status_code == 404
    result = app.test_cli_runner().invoke(args=["keys", "revoke", str(key_id)])
    assert result.exit_code == 0, result.output
    wait_for(lambda: client.get("/jobs/none", headers=bearer(key)).status_code == 401,
             timeout=5, what="the revoked key to be refused")


def test_migrations_match_the_models(stack):
    """Alembic's autogenerate finds nothing to add: the migrations are the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    import app.store.ledger  # noqa: F401  (its tables are part of the metadata)
    from app.store.tables import Base

    engine = create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_flask_cli_creates_a_working_key(stack, client):
    import subprocess
    import sys

    from devstack.servers import python_env

    made = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "create",
                           "--name", "from-the-shell"], env=python_env(stack.env),
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert client.get("/jobs/none", headers=bearer(key)).status_code == 404


def test_secrets_come_from_files_and_never_reach_the_logs(stack, gateway, tmp_path):
    from app.settings import Settings
    from tasks.settings import Env

    secret_file = tmp_path / "media_secret"
    secret_file.write_text("from-a-file\n")
    settings = Settings.from_env(Env({"MEDIA_SECRET_FILE": str(secret_file)}))
    assert settings.media_secret == "from-a-file"
    # Every process the stack ran so far (gateways, recorder, controller, webhooks, slots),
    # and the operator's token and Redis password beside the gateway's secrets.
    assert len(list(stack.logs.glob("*.log"))) >= 5
    assert not leaked_secrets(stack, {**stack.env, **stack.operator_env})
