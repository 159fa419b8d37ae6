"""Administration from the shell: flask --app app keys create --name NAME, db upgrade."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select, update

from app import db
from app.auth import create_key
from app.jobs import now
from app.models import ApiKey

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


keys = AppGroup("keys", help="API keys.")
database = AppGroup("db", help="The database schema.")


@keys.command("create")
@click.option("--name", required=True)
@click.option("--admin", is_flag=True, help="an admin key (admin API, dashboard)")
@click.option("--out", type=click.Path(dir_okay=False), help="also write the key to a file")
@click.option("--rate-limit", type=int, help="requests a minute (default RATE_LIMIT_PER_MINUTE)")
@click.option("--daily-quota", type=int, help="jobs a day (default: no quota)")
def create(name: str, admin: bool, out: str | None, rate_limit: int | None,
           daily_quota: int | None):
    """Create a key; it is printed once and stored only as a hash."""
    with db.transaction(current_app.extensions["db"]) as session:
        key = create_key(session, name, "admin" if admin else "user", rate_limit,
                         daily_quota)
    if out:
        Path(out).write_text(key + "\n")
        Path(out).chmod(0o600)
    click.echo(key)


@keys.command("list")
def list_keys():
    with current_app.extensions["db"]() as session:
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            click.echo(f"{k.id}\t{k.prefix}…\t{k.role}\t{k.name}\t{state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int):
    with db.transaction(current_app.extensions["db"]) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now()))
    click.echo(f"revoked key {key_id}")


@database.command("upgrade")
def db_upgrade():
    """Apply the Alembic migrations."""
    upgrade_database(current_app.config["DATABASE_URL"])
    click.echo("database up to date")


def register(app) -> None:
    from app.chain_cli import chain

    app.cli.add_command(keys)
    app.cli.add_command(database)
    app.cli.add_command(chain)
