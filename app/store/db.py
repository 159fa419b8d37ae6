"""SQLAlchemy engines and sessions; the gateway's request session is app.extensions'."""

import socket
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import sessionmaker


def make_sessionmaker(url: str, pool_size: int = 10, max_overflow: int = 20) -> sessionmaker:
    """Connections are checked as they leave the pool, without a round trip
    (closed_by_server), so that the first query after a restart does not fail. Past
    `pool_size` connections in use, up to `max_overflow` more are opened and closed again
    as they come back: a process with more concurrent users than its pool_size opens
    a connection (and PostgreSQL forks a backend) for many of its queries."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow,
                           pool_timeout=5)
    event.listen(engine, "checkout", closed_by_server)
    return sessionmaker(engine, expire_on_commit=False)


def closed_by_server(dbapi_connection, record, proxy) -> None:
    """Pool checkout: a connection PostgreSQL closed while it sat idle (a restart or a
    terminated backend sends its notice, then the end of the stream) is replaced.
    pool_pre_ping would ask with a round trip, on every request; this peeks at the
    socket, without blocking (libpq's sockets never block), where nothing waits on an
    idle connection that is open. A network that drops silently goes unseen here: the
    first statement's error then invalidates the pool's connections."""
    sock = socket.socket(fileno=dbapi_connection.fileno())
    try:
        sock.setblocking(False)
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return
    except OSError as exc:
        raise DisconnectionError(str(exc)) from exc
    finally:
        sock.detach()  # the descriptor stays libpq's
    raise DisconnectionError("closed by the server")


@contextmanager
def transaction(factory: sessionmaker):
    """A unit of work outside a request (CLI, recorder): commit or roll back."""
    with factory() as s, s.begin():
        yield s


@contextmanager
def autocommit(factory: sessionmaker):
    """A connection on which each statement is its own transaction (PostgreSQL's implicit
    one): for a unit of work that is one statement, a round trip where BEGIN, the
    statement and COMMIT take three."""
    with factory.kw["bind"].connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


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
