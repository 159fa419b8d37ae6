"""GET /openapi.json and GET /docs, a page that renders it with no outside script."""

from flask import Blueprint, current_app

from app import extensions as ext
from app.api.openapi import build_spec
from app.api.pipelines import limits_of

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi():
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = build_spec(limits_of(ext.settings()))
    return spec


@bp.get("/docs")
def docs():
    return current_app.send_static_file("docs.html")
