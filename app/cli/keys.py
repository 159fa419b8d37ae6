"""flask --app app keys create --name NAME | list | revoke ID"""

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select, update

from app import extensions as ext
from app.api.auth import create_key, hash_key
from app.api.keys import keys_changed
from app.webhooks import signing_secret
from app.store.db import transaction
from app.store.jobs import now
from app.store.tables import ApiKey

keys = AppGroup("keys", help="API keys.")


@keys.command("create")
@click.option("--name", required=True)
@click.option("--admin", is_flag=True, help="an admin key (admin API, dashboard)")
@click.option("--out", type=click.Path(dir_okay=False), help="also write the key to a file")
@click.option("--rate-limit", type=int, help="requests a minute (default RATE_LIMIT_PER_MINUTE)")
@click.option("--daily-quota", type=int, help="jobs a day (default: no quota)")
def create(name: str, admin: bool, out: str | None, rate_limit: int | None,
           daily_quota: int | None):
    """Create a key; it is printed once (last) and stored only as a hash, after the
    secret that signs its webhooks."""
    with transaction(ext.sessions()) as session:
        key = create_key(session, name, "admin" if admin else "user", rate_limit,
                         daily_quota)
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        _echo_webhook_secret(row)
    if out:
        Path(out).write_text(key + "\n")
        Path(out).chmod(0o600)
    click.echo(key)


@keys.command("rotate-webhook-secret")
@click.argument("key_id", type=int)
def rotate_webhook_secret(key_id: int):
    """A new secret for the key's webhooks (printed once); the old one stops at once."""
    with transaction(ext.sessions()) as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise click.UsageError(f"no key {key_id}")
        row.webhook_generation += 1
        _echo_webhook_secret(row)


def _echo_webhook_secret(row: ApiKey) -> None:
    secret = ext.settings().webhook_secret
    if secret:
        click.echo(f"webhook signing secret: "
                   f"{signing_secret(secret, row.id, row.webhook_generation or 1)}")


@keys.command("list")
def list_keys():
    with ext.new_session() as session:
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            click.echo(f"{k.id}\t{k.prefix}…\t{k.role}\t{k.name}\t{state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int):
    with transaction(ext.sessions()) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now()))
    keys_changed(ext.redis())
    click.echo(f"revoked key {key_id}")
