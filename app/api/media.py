"""Results served by the gateway under unguessable names."""

from flask import Blueprint, send_file

from app import extensions as ext
from app.errors import ApiError

bp = Blueprint("media", __name__)


@bp.get("/media/<name>")
def get_media(name: str):
    store = ext.media()
    path = store.path(name)
    if path is None:
        raise ApiError(404, "Not found.")
    return send_file(path, mimetype=store.content_type(name), max_age=3600)
