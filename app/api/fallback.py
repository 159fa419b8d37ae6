"""Forwarding a job that cannot be admitted here to another Livepeer-compatible gateway
(FALLBACK_GATEWAY_URL, with FALLBACK_API_KEY). Off unless configured.

The request goes on as the client sent it: a JSON body as it came, a multipart one
rebuilt from its fields and files (the form was parsed before, so its raw body is gone).
A refusal there is answered in our shape ({"detail": {"msg"}}, where go-livepeer writes
{"error": {"message"}}) with a status the route declares, so SDK clients can catch it."""

import requests
from flask import Request

from app.api.errors import ApiError
from app.settings import Settings
from tasks.pipelines.base import PipelineRequest


def enabled(settings: Settings) -> bool:
    return bool(settings.fallback_gateway_url)


def forward(settings: Settings, pipeline: str, schema: type[PipelineRequest], request: Request,
            uploads: dict) -> tuple[int, dict]:
    """Sends the request on, synchronously, and returns the other gateway's status and
    JSON answer, a refusal translated (ApiError)."""
    url = settings.fallback_gateway_url.rstrip("/") + f"/{pipeline}"
    headers = {"Authorization": f"Bearer {settings.fallback_api_key}"}
    if schema.FILES:
        body = {"data": request.form.to_dict(),
                "files": {name: (request.files[name].filename or name, upload.data,
                                 request.files[name].mimetype or "application/octet-stream")
                          for name, upload in uploads.items()}}
    else:
        body = {"data": request.get_data(), "headers": {"Content-Type": request.content_type}}
    try:
        response = requests.post(url, headers={**headers, **body.pop("headers", {})},
                                 timeout=settings.sync_timeout_seconds, **body)
        answer = response.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "No worker can take the job now, and the fallback gateway "
                            "did not answer.", {"Retry-After": "10"})
    if response.status_code != 200:
        raise ApiError(declared_status(response.status_code, schema), refusal(answer))
    return response.status_code, answer


def refusal(answer) -> str:
    """The message of another gateway's error: go-livepeer's {"error": {"message"}}, or
    ours ({"detail": {"msg"}})."""
    if isinstance(answer, dict):
        for outer, inner in (("error", "message"), ("detail", "msg")):
            if isinstance(answer.get(outer), dict) and isinstance(answer[outer].get(inner), str):
                return f"The fallback gateway refused the job: {answer[outer][inner]}"
    return "The fallback gateway refused the job."


def declared_status(status: int, schema: type[PipelineRequest]) -> int:
    """A status the route declares. The client's own fault stays a 400 (or the same
    status, where declared); the other gateway's refusal of our key, or its failure, is a
    500 here: nothing the client could change."""
    if status in (401, 403) or status >= 500:
        return 500
    return status if status in schema.ERRORS and status != 422 else 400
