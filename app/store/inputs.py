"""A new job's uploads as its message carries them: inline (base64) up to
INLINE_INPUT_MAX_BYTES; a larger one is kept in the media store until the job is final,
and its worker fetches it by a signed link (workers/inputs.py), so that a 10 MiB photo
crosses neither the broker nor the job's outbox row, and Redis holds a queued job in a
few KB.

The link names the gateway's public address (PUBLIC_BASE_URL), never the address a
client named in its request's Host: a worker fetches what the link says. A kept upload
is named by its job's id and an HMAC of (job, field) (MediaStore.input_name): whoever
ends the job finds it again (discard), and the controller's sweep removes what a crash
left of a job that ended (app/sweeper.py)."""

from __future__ import annotations

import hashlib

from app.store.media import MediaLinks, MediaStore
from tasks.messages import InputLink, encode_bytes
from tasks.pipelines import PIPELINES


def message_inputs(links: MediaLinks, job_id: str, uploads: dict[str, bytes],
                   inline_max: int) -> tuple[dict[str, str], dict[str, InputLink]]:
    """(the uploads that travel in the message, base64; links to those kept)."""
    inline, linked = {}, {}
    for field, data in uploads.items():
        if len(data) <= inline_max:
            inline[field] = encode_bytes(data)
            continue
        name = links.store.input_name(job_id, field)
        links.store.put(name, data)
        linked[field] = InputLink(url=links.url(name), size=len(data),
                                  sha256=hashlib.sha256(data).hexdigest())
    return inline, linked


def discard(store: MediaStore, job_id: str, fields) -> None:
    """The job's kept uploads gone (it is final, or was never queued)."""
    for field in fields:
        store.discard(store.input_name(job_id, field))


def kept_names(store: MediaStore, job_id: str, pipeline: str) -> list[str]:
    """The names the job's uploads are kept under, were they large."""
    return [store.input_name(job_id, field) for field in upload_fields(pipeline)]


def upload_fields(pipeline: str) -> tuple[str, ...]:
    spec = PIPELINES.get(pipeline)  # None: a plugin no longer installed here
    return spec.request.FILES if spec is not None else ()
