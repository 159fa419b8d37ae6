"""SQLAlchemy engine and sessions, owned by the Flask app (no globals at import)."""

from contextlib import contextmanager

from flask import current_app, g
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_sessionmaker(url: str) -> sessionmaker:
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                           pool_timeout=5)
    return sessionmaker(engine, expire_on_commit=False)


def init_app(app) -> None:
    app.extensions["db"] = make_sessionmaker(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db"]()
    return g.db_session


def _close_session(exc) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


@contextmanager
def transaction(factory: sessionmaker):
    """A unit of work outside a request (CLI, recorder): commit or roll back."""
    with factory() as s, s.begin():
        yield s
