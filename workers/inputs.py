"""A job's uploads as its message carries them: in it (base64), or kept by the gateway
and linked (app/store/inputs.py). A linked one is fetched here and checked against the
size and digest the message names before any model sees it.

A link the gateway cannot serve for a moment (it restarts: no answer, or a 5xx) is tried
again, FETCH_TRIES times in all; one it refuses (gone, expired: a 4xx) or bytes that are
not what the message says are not."""

from __future__ import annotations

import hashlib
import logging
import time
from urllib.parse import urlsplit

import requests

from tasks.messages import InputLink, JobMessage, decode_bytes

log = logging.getLogger(__name__)
FETCH_TRIES = 3
RETRY_SECONDS = 0.5  # then 1 s
TIMEOUT = (5.0, 60.0)  # connect, and between two reads


class InputsUnavailable(Exception):
    """The job's uploads cannot be had as its message describes them."""


class _Transient(Exception):
    pass


def job_inputs(job: JobMessage, http: requests.Session) -> dict[str, bytes]:
    """The job's uploads by field: InputsUnavailable when a linked one cannot be had."""
    inputs = {field: decode_bytes(data) for field, data in job.inputs.items()}
    for field, link in job.input_links.items():
        inputs[field] = fetch(link, http)
    return inputs


def fetch(link: InputLink, http: requests.Session) -> bytes:
    if urlsplit(link.url).scheme not in ("http", "https"):
        raise InputsUnavailable("an upload's link is not an HTTP URL")
    for attempt in range(1, FETCH_TRIES + 1):
        try:
            data = _get(link, http)
            break
        except _Transient as exc:
            if attempt == FETCH_TRIES:
                raise InputsUnavailable(f"the gateway could not serve an upload: {exc}")
            log.warning("fetching an upload failed (try %d): %s", attempt, exc)
            time.sleep(RETRY_SECONDS * attempt)
    if len(data) != link.size or hashlib.sha256(data).hexdigest() != link.sha256:
        raise InputsUnavailable("an upload is not what the job's message says it is")
    return data


def _get(link: InputLink, http: requests.Session) -> bytes:
    try:
        with http.get(link.url, timeout=TIMEOUT, stream=True) as response:
            if response.status_code >= 500:
                raise _Transient(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise InputsUnavailable(f"the gateway refused an upload: HTTP "
                                        f"{response.status_code}")
            # One byte more than it should be tells a longer file without reading it all.
            return response.raw.read(link.size + 1, decode_content=True)
    except requests.RequestException as exc:
        raise _Transient(str(exc)) from None
