"""GET /openapi.json and GET /docs, a page that renders it with no outside script."""

from flask import Blueprint, current_app

from app.api.openapi import build_spec

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi():
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = build_spec()
    return spec


@bp.get("/docs")
def docs():
    return current_app.send_static_file("docs.html")
