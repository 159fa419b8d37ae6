"""Reading settings from the environment, for every process, and the defaults that more
than one kind of process shares. Each process kind has one settings module of its own
(app/settings.py, workers/settings.py) that reads the environment once, at start, into a
frozen object; this module is what they read it with.

A secret comes from NAME or from the file named by NAME_FILE (Docker secrets, a key file
under .run/), so it need not sit in the environment of every process."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

# Shared by the gateway's processes and the workers: written here once.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_MODELS_FILE = "models.json"
DEFAULT_MODELS_DIR = ".run/models"
# The longest a job may run; the broker's visibility timeout is derived from it so that
# Redis never hands a running job to a second worker.
DEFAULT_MAX_JOB_SECONDS = 1800
DEFAULT_HEARTBEAT_SECONDS = 5.0


class Env:
    """Typed reads of an environment mapping; a value that does not parse names itself."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def str(self, name: str, default: str = "") -> str:
        return self.environ.get(name) or default

    def int(self, name: str, default: int) -> int:
        return self._parse(name, int, default)

    def float(self, name: str, default: float | None) -> float | None:
        return self._parse(name, float, default)

    def seconds(self, name: str, default: float) -> float:
        """An interval: $NAME as given, else the production default times TIME_SCALE (1
        in production; the tests run every watcher of time faster by one factor, which a
        test checks is what each process runs with)."""
        return self.float(name, default * self.time_scale)

    @property
    def time_scale(self) -> float:
        return self._parse("TIME_SCALE", float, 1.0)

    def flag(self, name: str) -> bool:
        return self.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")

    def json(self, name: str, default):
        return self._parse(name, json.loads, default)

    def secret(self, name: str) -> str | None:
        """$NAME, else the contents of the file $NAME_FILE, else None."""
        value = self.environ.get(name)
        if value:
            return value.strip()
        path = self.environ.get(f"{name}_FILE")
        if path:
            return Path(path).read_text().strip()
        return None

    def _parse(self, name: str, parse, default):
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ValueError(f"{name}={raw!r} does not parse: {exc}") from None
