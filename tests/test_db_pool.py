"""The pool's check of a connection as it leaves it (app/store/db.py): one PostgreSQL
closed while it sat idle is replaced, without a round trip, and the statement that takes
it does not fail."""

from sqlalchemy import func, select, text

from app.store.db import make_sessionmaker


def test_a_connection_postgres_closed_while_idle_is_replaced_as_it_leaves_the_pool(stack):
    sessions, admin = make_sessionmaker(stack.postgres.url), make_sessionmaker(stack.postgres.url)
    try:
        with sessions() as session:  # the pool's one connection, idle from here
            backend = session.scalar(select(func.pg_backend_pid()))
        with admin() as session:
            # Returns once the backend has exited, its notice and the end of the stream
            # written to the idle connection's socket.
            assert session.scalar(text("SELECT pg_terminate_backend(:pid, 10000)"),
                                  {"pid": backend})
        with sessions() as session:
            assert session.scalar(select(func.pg_backend_pid())) != backend
    finally:
        for factory in (sessions, admin):
            factory.kw["bind"].dispose()


def test_a_connection_is_checked_whatever_its_descriptors_number(stack):
    """A gateway holding thousands of waiting clients gives its PostgreSQL connections
    descriptors past select()'s 1024: the check must not take them for closed."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    sessions = make_sessionmaker(stack.postgres.url)
    try:
        for _ in range(2):  # a new connection, then the same one from the pool
            with sessions() as session:
                assert session.connection().connection.driver_connection.fileno() > 1024
                assert session.scalar(select(text("1"))) == 1
    finally:
        sessions.kw["bind"].dispose()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
