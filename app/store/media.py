"""Where results live: files named by an HMAC of (job, index), served by the gateway.

The name is unguessable without the secret, and recording a result twice writes the same
names, so a retried recording never orphans a file. The URLs handed out carry an expiry
and a signature over (name, expiry): a leaked link stops working.

A queued job's large uploads live here too, in inputs/, until the job is final: its
worker fetches them by a signed link (app/store/inputs.py), so that they cross neither
the broker nor the job's outbox row. Their names are the job's id and an HMAC of (job,
field): unguessable, and a sweep can tell whose each is."""

import hashlib
import hmac
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.messages import ANSWER, TEXT

EXTENSIONS = {"image/png": ".png", "video/mp4": ".mp4", "image/jpeg": ".jpg",
              "application/json": ".json", "audio/wav": ".wav"}
CONTENT_TYPES = {ext: ctype for ctype, ext in EXTENSIONS.items()}
INPUT_SUFFIX = ".in"  # an upload kept for its worker: its bytes as the client sent them
INPUTS_DIR = "inputs"  # apart from the results, so that a sweep lists only these
_NAME = re.compile(r"^[0-9a-f]{48}\.(png|mp4|jpg|json|wav)$")
_INPUT_NAME = re.compile(r"^([0-9a-f-]{36})-[0-9a-f]{48}\.in$")


class MediaStore:
    def __init__(self, directory: str | Path, secret: str):
        if not secret:
            raise ValueError("MEDIA_SECRET must be set")
        self.directory = Path(directory)
        self.inputs = self.directory / INPUTS_DIR
        self.secret = secret.encode()
        self.inputs.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def accepts(content_type: str) -> bool:
        """Whether a result of this type can be stored and served (or is the answer's
        text or JSON itself)."""
        return content_type in EXTENSIONS or content_type in (TEXT, ANSWER)

    def name_for(self, job_id: str, index: int, content_type: str) -> str:
        digest = hmac.new(self.secret, f"{job_id}/{index}".encode(), hashlib.sha256)
        return digest.hexdigest()[:48] + EXTENSIONS[content_type]

    def input_name(self, job_id: str, field: str) -> str:
        digest = hmac.new(self.secret, f"input/{job_id}/{field}".encode(), hashlib.sha256)
        return f"{job_id}-{digest.hexdigest()[:48]}{INPUT_SUFFIX}"

    def inputs_before(self, when: float) -> dict[str, str]:
        """The kept uploads last written before `when` (unix time): name -> job id."""
        kept = {}
        for entry in os.scandir(self.inputs):
            if not (found := _INPUT_NAME.match(entry.name)):
                continue
            try:
                written = entry.stat().st_mtime
            except FileNotFoundError:  # its job ended since the listing
                continue
            if written < when:
                kept[entry.name] = found.group(1)
        return kept

    def discard(self, name: str) -> None:
        """The file gone, if it was there."""
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            pass

    def put(self, name: str, data: bytes) -> None:
        """Atomic: a reader sees the whole file or none."""
        target = self._file(name)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)

    def path(self, name: str) -> Path | None:
        if not (_NAME.match(name) or _INPUT_NAME.match(name)):
            return None
        path = self._file(name)
        return path if path.is_file() else None

    def _file(self, name: str) -> Path:
        return self.inputs / name if name.endswith(INPUT_SUFFIX) else self.directory / name

    @staticmethod
    def content_type(name: str) -> str:
        return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")

    def signature(self, name: str, expires: int) -> str:
        return hmac.new(self.secret, f"url/{name}/{expires}".encode(),
                        hashlib.sha256).hexdigest()[:32]

    def link_is_valid(self, name: str, expires: str, sig: str) -> bool:
        """A link whose signature matches (compared in constant time) and has not
        expired."""
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self.signature(name, int(expires)), sig)


@dataclass(frozen=True)
class MediaLinks:
    """Makes the URLs of results for one base URL, valid for ttl seconds."""

    base_url: str
    store: MediaStore
    ttl: int

    def url(self, name: str) -> str:
        expires = int(time.time()) + self.ttl
        return (f"{self.base_url}media/{name}?expires={expires}"
                f"&sig={self.store.signature(name, expires)}")
