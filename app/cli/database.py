"""flask --app app db upgrade"""

import click
from flask.cli import AppGroup

from app import extensions as ext
from app.store.db import upgrade_database

database = AppGroup("db", help="The database schema.")


@database.command("upgrade")
def db_upgrade():
    """Apply the Alembic migrations."""
    upgrade_database(ext.settings().database_url)
    click.echo("database up to date")
