"""SQLAlchemy engines and sessions; the gateway's request session is app.extensions'."""

from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


def make_sessionmaker(url: str, pre_ping: bool = True) -> sessionmaker:
    """`pre_ping`: each checkout first asks PostgreSQL whether the connection still
    works (a round trip), so that the first query after a restart does not fail."""
    engine = create_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=20,
                           pool_timeout=5)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker):
    """A unit of work outside a request (CLI, recorder): commit or roll back."""
    with factory() as s, s.begin():
        yield s


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str) -> None:
    """Applies the Alembic migrations (migrations/) up to the newest."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")
