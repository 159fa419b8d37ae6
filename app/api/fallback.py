"""Forwarding a job that cannot be admitted here to another Livepeer-compatible gateway
(FALLBACK_GATEWAY_URL, with FALLBACK_API_KEY). Off unless configured."""

import requests
from flask import Request

from app.api.errors import ApiError
from app.settings import Settings

# Headers that describe the request body, passed on as they are.
PASSED_HEADERS = ("Content-Type",)


def enabled(settings: Settings) -> bool:
    return bool(settings.fallback_gateway_url)


def forward(settings: Settings, pipeline: str, request: Request) -> tuple[int, dict]:
    """Sends the request as it came (same body, synchronously) and returns the other
    gateway's status and JSON answer."""
    url = settings.fallback_gateway_url.rstrip("/") + f"/{pipeline}"
    headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
    headers["Authorization"] = f"Bearer {settings.fallback_api_key}"
    try:
        response = requests.post(url, data=request.get_data(), headers=headers,
                                 timeout=settings.sync_timeout_seconds)
        body = response.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "No worker can take the job now, and the fallback gateway "
                            "did not answer.", {"Retry-After": "10"})
    return response.status_code, body
