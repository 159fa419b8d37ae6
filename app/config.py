"""Gateway configuration, read from the environment (12-factor), with dev defaults."""

import os


def from_env(environ=os.environ) -> dict:
    return {
        "DATABASE_URL": environ.get("DATABASE_URL", "postgresql+psycopg:///genai"),
        "REDIS_URL": environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MODELS_FILE": environ.get("MODELS_FILE", "models.json"),
        "MEDIA_DIR": environ.get("MEDIA_DIR", ".run/media"),
        # Media names are an HMAC of the job under this secret: unguessable, and the same
        # when a result is recorded twice, so a retry never leaves an orphan file.
        "MEDIA_SECRET": environ.get("MEDIA_SECRET", ""),
        "SYNC_TIMEOUT_SECONDS": float(environ.get("SYNC_TIMEOUT_SECONDS", "600")),
        "MAX_JOB_SECONDS": int(environ.get("MAX_JOB_SECONDS", "1800")),
        "MAX_CONTENT_LENGTH": int(environ.get("UPLOAD_LIMIT_BYTES", str(10 * 1024 * 1024))),
        "MAX_IMAGE_SIDE": int(environ.get("MAX_IMAGE_SIDE", "2048")),
        "MAX_STEPS": int(environ.get("MAX_STEPS", "200")),
        "MAX_IMAGES_PER_REQUEST": int(environ.get("MAX_IMAGES_PER_REQUEST", "8")),
    }
