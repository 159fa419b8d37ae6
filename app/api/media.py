"""Results served by the gateway under unguessable names."""

from flask import Blueprint, request, send_file

from app import extensions as ext
from app.api.errors import ApiError

bp = Blueprint("media", __name__)


@bp.get("/media/<name>")
def get_media(name: str):
    """Needs no key (a browser or player fetches it), only a link that is signed and
    unexpired: the names are unguessable and the links stop working."""
    store = ext.media()
    path = store.path(name)
    if path is None:
        raise ApiError(404, "Not found.")
    if not store.link_is_valid(name, request.args.get("expires", ""),
                               request.args.get("sig", "")):
        raise ApiError(403, "This link is invalid or has expired.")
    return send_file(path, mimetype=store.content_type(name), max_age=3600)
