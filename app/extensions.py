"""Typed access to what create_app() attaches to the app, and the request's database
session."""

from flask import current_app, g
from sqlalchemy.orm import Session

from app.settings import Settings


def settings() -> Settings:
    return current_app.extensions["settings"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db"]()
    return g.db_session


def sessions():
    """The session factory, for work outside the request's session."""
    return current_app.extensions["db"]


def new_session() -> Session:
    """A session of its own, outside the request's (close it, or use it with `with`)."""
    return sessions()()


def new_jobs():
    """The process's writer of new jobs, in groups (app/store/group_commit.py)."""
    return current_app.extensions["new_jobs"]


def shared_redis():
    """The process's pipeline shared by requests' Redis commands (app/shared_pipeline.py)."""
    return current_app.extensions["shared_redis"]


def redis():
    return current_app.extensions["redis"]


def hub():
    """The process's one subscriber to job events (app/hub.py)."""
    return current_app.extensions["hub"]


def keys():
    """The process's cache of API keys (app/api/keys.py)."""
    return current_app.extensions["keys"]


def workers():
    """The live workers as this process read them lately (tasks/discovery.py)."""
    return current_app.extensions["workers"]


def celery():
    return current_app.extensions["celery"]


def catalog():
    return current_app.extensions["catalog"]


def media():
    return current_app.extensions["media"]


def media_links(base_url: str):
    from app.store.media import MediaLinks

    return MediaLinks(base_url, media(), settings().media_url_ttl_seconds)


def input_links():
    """Links for workers: to the gateway's public address, not the request's Host."""
    return media_links(settings().public_base_url)
