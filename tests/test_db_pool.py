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
    import gc
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    gc.collect()  # sockets of earlier tests closed now, not by a finalizer later
    held = []
    while (fd := os.open(os.devnull, os.O_RDONLY)) <= 1024:  # every lower one taken
        held.append(fd)
    held.append(fd)
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


def test_a_gateway_whose_pool_is_in_use_waits_then_answers_503_and_opens_no_more(stack,
                                                                                 api_key):
    """The gateway keeps DB_POOL_SIZE connections and opens no more: past them a request
    waits for one (overflow connections would be opened and closed again, a backend
    forked for most requests under load), and after the pool's 5 s, is a 503 to retry."""
    import dataclasses

    from app import create_app
    from app.settings import Settings

    app = create_app(dataclasses.replace(Settings.from_env(), db_pool_size=1), testing=True)
    sessions = app.extensions["db"]
    try:
        with sessions() as holder:
            holder.connection()  # the pool's one connection, in use
            answer = app.test_client().post("/echo", json={"prompt": "no connection"},
                                            headers={"Authorization": f"Bearer {api_key}",
                                                     "Prefer": "respond-async"})
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        assert answer.get_json()["detail"]["msg"] == "The gateway is busy; try again shortly."
    finally:
        sessions.kw["bind"].dispose()


def test_a_request_that_reads_its_key_holds_no_connection_while_its_job_is_written(
        stack, sessions, echo_worker):
    """A key not in the process's cache is read from PostgreSQL; the request then waits
    for its job's group (app/store/group_commit.py), whose leader takes a connection of
    the same pool. Holding the first while waiting for the second, a pool of one would
    refuse every such request, and a pool of 32 the 32 that missed the cache at once."""
    import dataclasses

    from app import create_app
    from app.settings import Settings
    from support import make_key

    echo_worker("pool-of-one")  # admission needs a worker for the model
    key = make_key(sessions, "pool-of-one")
    app = create_app(dataclasses.replace(Settings.from_env(), db_pool_size=1), testing=True)
    try:
        answer = app.test_client().post("/echo", json={"prompt": "one connection"}, headers={
            "Authorization": f"Bearer {key}", "Prefer": "respond-async",
            "Idempotency-Key": "pool-of-one"})
        assert answer.status_code == 202, answer.get_data(as_text=True)
    finally:
        app.extensions["db"].kw["bind"].dispose()
