"""Typed access to what create_app() attaches to the app."""

from flask import current_app


def redis():
    return current_app.extensions["redis"]


def celery():
    return current_app.extensions["celery"]


def catalog():
    return current_app.extensions["catalog"]


def media():
    return current_app.extensions["media"]


def media_links(base_url: str):
    from app.media import MediaLinks

    return MediaLinks(base_url, media(), current_app.config["MEDIA_URL_TTL_SECONDS"])
