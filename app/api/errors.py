"""Every error the gateway answers is JSON in the SDK's shape: {"detail": {"msg": ...}},
or {"detail": [{loc, msg, type}]} for a request that breaks the schema (422)."""

import logging

import redis.exceptions
import sqlalchemy.exc
from flask import jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from tasks.pipelines.base import InvalidRequest

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, msg: str, headers: dict | None = None):
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.headers = headers or {}


class ValidationFailed(Exception):
    """A schema violation found outside pydantic (a missing file part): a 422."""

    def __init__(self, detail: list[dict]):
        super().__init__("validation failed")
        self.detail = detail


def error_response(status: int, msg: str, headers: dict | None = None):
    response = jsonify({"detail": {"msg": msg}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def validation_response(exc: ValidationError):
    return unprocessable([{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"],
                           "type": e["type"]}
                          for e in exc.errors(include_url=False, include_context=False)])


def unprocessable(detail: list[dict]):
    response = jsonify({"detail": detail})
    response.status_code = 422
    return response


def register(app) -> None:
    app.register_error_handler(ApiError, lambda e: error_response(e.status, e.msg, e.headers))
    app.register_error_handler(InvalidRequest, lambda e: error_response(e.status, e.msg))
    app.register_error_handler(ValidationError, validation_response)
    app.register_error_handler(ValidationFailed, lambda e: unprocessable(e.detail))
    app.register_error_handler(HTTPException, _http_error)
    # A store that is down is a 503 to come back later, answered at once: never a hang
    # and never a 500. Connections are checked as they leave the pool (db.closed_by_server), so
    # recovery is automatic.
    app.register_error_handler(sqlalchemy.exc.OperationalError, lambda e: _unavailable(
        e, "The database is unavailable; try again shortly."))
    # Every connection of the process's pool in use for 5 s (DB_POOL_SIZE): busy, not broken.
    app.register_error_handler(sqlalchemy.exc.TimeoutError, lambda e: _unavailable(
        e, "The gateway is busy; try again shortly."))
    app.register_error_handler(redis.exceptions.ConnectionError, lambda e: _unavailable(
        e, "The job queue is unavailable; try again shortly."))
    app.register_error_handler(Exception, _unexpected)


def _http_error(exc: HTTPException):
    messages = {413: "Request body too large.", 404: "Not found.",
                405: "Method not allowed.", 415: "Unsupported media type."}
    return error_response(exc.code or 500, messages.get(exc.code, exc.description or exc.name))


def _unavailable(exc: Exception, msg: str):
    log.warning("%s (%s)", msg, type(exc).__name__)
    return error_response(503, msg, {"Retry-After": "5"})


def _unexpected(exc: Exception):
    # Never a stack trace to the client; the log has it.
    log.exception("unhandled error")
    return error_response(500, "Internal server error.")
