"""Gateway configuration, read from the environment (12-factor), with dev defaults."""

import json
import os

from chain.config import gateway_address, secret


def from_env(environ=os.environ) -> dict:
    return {
        "DATABASE_URL": environ.get("DATABASE_URL", "postgresql+psycopg:///genai"),
        "REDIS_URL": environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MODELS_FILE": environ.get("MODELS_FILE", "models.json"),
        "MEDIA_DIR": environ.get("MEDIA_DIR", ".run/media"),
        # Media names are an HMAC of the job under this secret: unguessable, and the same
        # when a result is recorded twice, so a retry never leaves an orphan file.
        "MEDIA_SECRET": secret("MEDIA_SECRET", environ) or "",
        "MEDIA_URL_TTL_SECONDS": int(environ.get("MEDIA_URL_TTL_SECONDS", str(7 * 24 * 3600))),
        "SYNC_TIMEOUT_SECONDS": float(environ.get("SYNC_TIMEOUT_SECONDS", "600")),
        "MAX_JOB_SECONDS": int(environ.get("MAX_JOB_SECONDS", "1800")),
        "MAX_CONTENT_LENGTH": int(environ.get("UPLOAD_LIMIT_BYTES", str(10 * 1024 * 1024))),
        "MAX_IMAGE_SIDE": int(environ.get("MAX_IMAGE_SIDE", "2048")),
        "MAX_STEPS": int(environ.get("MAX_STEPS", "200")),
        "MAX_IMAGES_PER_REQUEST": int(environ.get("MAX_IMAGES_PER_REQUEST", "8")),
        # Operating it: the dashboard's session cookie is signed with SECRET_KEY (no
        # dashboard login without it); LOG_LEVEL for the gateway's JSON log lines.
        "SECRET_KEY": secret("SECRET_KEY", environ) or "",
        "SESSION_COOKIE_NAME": "genai_dashboard",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": environ.get("SESSION_COOKIE_SECURE", "") == "1",
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO"),
        # Admission: the longest estimated wait before a job starts that is accepted,
        # unless the request asks for less (X-Deadline-Seconds); per pipeline as JSON.
        "ADMISSION_MAX_WAIT_SECONDS": float(environ.get("ADMISSION_MAX_WAIT_SECONDS", "300")),
        "ADMISSION_MAX_WAIT_BY_PIPELINE": json.loads(
            environ.get("ADMISSION_MAX_WAIT_BY_PIPELINE", "{}")),
        # Fair share: jobs one key may have queued or running at once (429 above).
        "RATE_LIMIT_PER_MINUTE": int(environ.get("RATE_LIMIT_PER_MINUTE", "3000")),
        "MAX_ACTIVE_JOBS_PER_KEY": int(environ.get("MAX_ACTIVE_JOBS_PER_KEY", "100")),
        "FALLBACK_GATEWAY_URL": environ.get("FALLBACK_GATEWAY_URL", ""),
        "FALLBACK_API_KEY": secret("FALLBACK_API_KEY", environ) or "",
        "WEBHOOK_SECRET": secret("WEBHOOK_SECRET", environ) or "",
        # The gateway's public address, for URLs in webhooks (no request to take it from).
        "PUBLIC_BASE_URL": environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8935/"),
        # Payments (chain.config): the chain, and who pays. The gateway's private key stays
        # out of the config; only the processes that sign or fund read it.
        "CHAIN_RPC_URL": environ.get("CHAIN_RPC_URL", ""),
        "TICKET_BROKER_ADDRESS": environ.get("TICKET_BROKER_ADDRESS", ""),
        "GATEWAY_ADDRESS": gateway_address(environ),
    }
