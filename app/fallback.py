"""Forwarding a job that cannot be admitted here to another Livepeer-compatible gateway
(FALLBACK_GATEWAY_URL, with FALLBACK_API_KEY). Off unless configured."""

import requests
from flask import Request

from app.errors import ApiError

# Headers that describe the request body, passed on as they are.
PASSED_HEADERS = ("Content-Type",)


def enabled(config) -> bool:
    return bool(config.get("FALLBACK_GATEWAY_URL"))


def forward(config, pipeline: str, request: Request) -> tuple[int, dict]:
    """Sends the request as it came (same body, synchronously) and returns the other
    gateway's status and JSON answer."""
    url = config["FALLBACK_GATEWAY_URL"].rstrip("/") + f"/{pipeline}"
    headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
    headers["Authorization"] = f"Bearer {config['FALLBACK_API_KEY']}"
    try:
        response = requests.post(url, data=request.get_data(), headers=headers,
                                 timeout=config["SYNC_TIMEOUT_SECONDS"])
        body = response.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "No worker can take the job now, and the fallback gateway "
                            "did not answer.", {"Retry-After": "10"})
    return response.status_code, body
