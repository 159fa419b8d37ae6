"""The settings of the gateway and its back office (recorder, controller, watcher,
Flower), read from the environment once into a frozen object (12-factor), with dev
defaults. Each default is written here once."""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.broker import ChainEndpoint
from chain.codec import to_address
from chain.signature import address_of
from tasks.settings import (
    DEFAULT_MAX_JOB_SECONDS, DEFAULT_MODELS_FILE, DEFAULT_REDIS_URL, Env,
)


def gateway_key(env: Env | None = None) -> str | None:
    """The key the gateway signs tickets and funds its deposit with. Not a setting the web
    tier holds: only the processes that sign or fund read it."""
    return (env or Env()).secret("GATEWAY_PRIVATE_KEY")


def gateway_address(env: Env) -> str | None:
    """GATEWAY_ADDRESS, else the address of the gateway's key: processes that only need to
    know who pays (the gateway's web tier, the watcher) can do without the key."""
    if env.str("GATEWAY_ADDRESS"):
        return to_address(env.str("GATEWAY_ADDRESS"))
    key = gateway_key(env)
    return address_of(key) if key else None


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql+psycopg:///genai"
    redis_url: str = DEFAULT_REDIS_URL
    # Redis connections a gateway process opens at most: thousands of greenlets share
    # them, waiting for one rather than each opening its own.
    redis_max_connections: int = 64
    # PostgreSQL connections a gateway process keeps, and opens at most: its greenlets
    # wait for a free one. A pool that overflowed under load would open and close a
    # connection for most requests, each a backend PostgreSQL forks.
    db_pool_size: int = 32
    models_file: str = DEFAULT_MODELS_FILE
    media_dir: str = ".run/media"
    # Media names are an HMAC of the job under this secret: unguessable, and the same
    # when a result is recorded twice, so a retry never leaves an orphan file.
    media_secret: str = ""
    media_url_ttl_seconds: int = 7 * 24 * 3600
    sync_timeout_seconds: float = 600.0
    max_job_seconds: int = DEFAULT_MAX_JOB_SECONDS
    upload_limit_bytes: int = 10 * 1024 * 1024
    # An upload up to this size travels in the job's message; a larger one is kept in the
    # media store and its worker fetches it by a signed link (app/store/inputs.py).
    inline_input_max_bytes: int = 64 * 1024
    max_image_side: int = 2048
    max_steps: int = 200
    max_images_per_request: int = 8
    max_llm_tokens: int = 4096
    # The dashboard's session cookie is signed with it (no dashboard login without it).
    secret_key: str = ""
    session_cookie_secure: bool = False
    log_level: str = "INFO"
    # Admission: the longest estimated wait before a job starts that is accepted, unless
    # the request asks for less (X-Deadline-Seconds); per pipeline as JSON.
    admission_max_wait_seconds: float = 300.0
    admission_max_wait_by_pipeline: dict = field(default_factory=dict)
    rate_limit_per_minute: int = 3000
    # Fair share: jobs one key may have queued or running at once (429 above).
    max_active_jobs_per_key: int = 100
    fallback_gateway_url: str = ""
    fallback_api_key: str = ""
    # Each API key's webhook signing secret is derived from it (app/webhooks.py).
    webhook_secret: str = ""
    # Networks (CIDR, comma-separated) webhooks may reach although not public.
    webhook_allow_private: str = ""
    webhook_concurrency: int = 32
    # One key's deliveries in flight at once: its slow receivers hold up only its own.
    webhook_per_key_concurrency: int = 4
    webhook_timeout_seconds: float = 10.0  # in all, per attempt
    webhook_max_response_bytes: int = 65536
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 1.0  # the first retry's; doubled each time, to 600
    webhooks_log_level: str = "INFO"
    webhooks_metrics_port: int = 0
    # Operators' signing keys are derived from it (app/operators.py): nothing secret is
    # stored per operator.
    operator_keys_secret: str = ""
    # The broker as operators' processes reach it (the REDIS_URL `operators create`
    # prints, with the operator's user); REDIS_URL when empty.
    operator_redis_url: str = ""
    # The gateway's public address, for URLs in webhooks (no request to take it from).
    public_base_url: str = "http://127.0.0.1:8935/"
    # Payments: the chain, and who pays (the gateway's address; its key stays out).
    chain: ChainEndpoint | None = None
    gateway_address: str | None = None
    # The recorder's, controller's and watcher's own.
    # GET /metrics: the network's state is read at most this often; a scrape needs this
    # bearer token when it is set.
    metrics_refresh_seconds: float = 15.0
    metrics_token: str = ""
    recorder_metrics_port: int = 0
    recorder_metrics_addr: str = "127.0.0.1"
    recorder_log_level: str = "INFO"
    # How long the recorder, having read a job's start, waits for its end: a short job's
    # end then goes in the same transaction instead of queueing behind the start's.
    recorder_linger_ms: int = 5
    controller_interval_seconds: float = 1.0
    # The sweep (app/sweeper.py): how often, and how old a job must be to be looked at.
    sweep_interval_seconds: float = 5.0
    sweep_grace_seconds: float = 30.0
    controller_log_level: str = "INFO"
    placement_target_wait_seconds: float = 30.0
    placement_idle_seconds: float = 600.0
    placement_cooldown_seconds: float = 30.0
    watcher_interval_seconds: float = 5.0
    # Blocks left unread at the head: what the watcher records is this deep (a reorg above
    # it is unwound and read again). 0 on the dev chain (devstack sets it).
    watcher_confirmations: int = 6
    watcher_from_block: int = 0
    watcher_log_level: str = "INFO"
    # The settler's: how often it looks for debts due, the cap of its backoff (no ceiling on
    # the tries), and how old its view of the chain may be for bounding new tickets.
    settle_interval_seconds: float = 1.0
    settle_retry_max_seconds: float = 60.0
    settle_view_max_age_seconds: float = 600.0
    settler_log_level: str = "INFO"
    # Bounds on every ticket the gateway signs (chain/bounds.py). The EV ceiling is
    # go-livepeer's default -maxTicketEV (3000 gwei).
    max_face_value: int = 10**18
    ticket_max_ev_fee_multiple: int = 100
    ticket_min_ev: int = 1
    ticket_max_ev: int = 3 * 10**12
    # A debt unpaid for longer shows as owed_unpaid (/admin/payments, the gauge).
    payments_unpaid_seconds: float = 3600.0

    @classmethod
    def from_env(cls, env: Env | None = None) -> "Settings":
        env = env or Env()
        d = cls()  # the defaults, each written once above
        return cls(
            database_url=env.str("DATABASE_URL", d.database_url),
            redis_url=env.str("REDIS_URL", d.redis_url),
            redis_max_connections=env.int("REDIS_MAX_CONNECTIONS", d.redis_max_connections),
            db_pool_size=env.int("DB_POOL_SIZE", d.db_pool_size),
            models_file=env.str("MODELS_FILE", d.models_file),
            media_dir=env.str("MEDIA_DIR", d.media_dir),
            media_secret=env.secret("MEDIA_SECRET") or "",
            media_url_ttl_seconds=env.int("MEDIA_URL_TTL_SECONDS", d.media_url_ttl_seconds),
            sync_timeout_seconds=env.float("SYNC_TIMEOUT_SECONDS", d.sync_timeout_seconds),
            max_job_seconds=env.int("MAX_JOB_SECONDS", d.max_job_seconds),
            upload_limit_bytes=env.int("UPLOAD_LIMIT_BYTES", d.upload_limit_bytes),
            inline_input_max_bytes=env.int("INLINE_INPUT_MAX_BYTES", d.inline_input_max_bytes),
            max_image_side=env.int("MAX_IMAGE_SIDE", d.max_image_side),
            max_steps=env.int("MAX_STEPS", d.max_steps),
            max_images_per_request=env.int("MAX_IMAGES_PER_REQUEST", d.max_images_per_request),
            max_llm_tokens=env.int("MAX_LLM_TOKENS", d.max_llm_tokens),
            secret_key=env.secret("SECRET_KEY") or "",
            session_cookie_secure=env.str("SESSION_COOKIE_SECURE") == "1",
            log_level=env.str("LOG_LEVEL", d.log_level),
            admission_max_wait_seconds=env.float("ADMISSION_MAX_WAIT_SECONDS",
                                                 d.admission_max_wait_seconds),
            admission_max_wait_by_pipeline=env.json("ADMISSION_MAX_WAIT_BY_PIPELINE", {}),
            rate_limit_per_minute=env.int("RATE_LIMIT_PER_MINUTE", d.rate_limit_per_minute),
            max_active_jobs_per_key=env.int("MAX_ACTIVE_JOBS_PER_KEY",
                                            d.max_active_jobs_per_key),
            fallback_gateway_url=env.str("FALLBACK_GATEWAY_URL"),
            fallback_api_key=env.secret("FALLBACK_API_KEY") or "",
            webhook_secret=env.secret("WEBHOOK_SECRET") or "",
            webhook_allow_private=env.str("WEBHOOK_ALLOW_PRIVATE"),
            webhook_concurrency=env.int("WEBHOOK_CONCURRENCY", d.webhook_concurrency),
            webhook_per_key_concurrency=env.int("WEBHOOK_PER_KEY_CONCURRENCY",
                                                d.webhook_per_key_concurrency),
            webhook_timeout_seconds=env.float("WEBHOOK_TIMEOUT_SECONDS", d.webhook_timeout_seconds),
            webhook_max_response_bytes=env.int("WEBHOOK_MAX_RESPONSE_BYTES",
                                               d.webhook_max_response_bytes),
            webhook_max_attempts=env.int("WEBHOOK_MAX_ATTEMPTS", d.webhook_max_attempts),
            webhook_backoff_seconds=env.float("WEBHOOK_BACKOFF_SECONDS", d.webhook_backoff_seconds),
            webhooks_log_level=env.str("WEBHOOKS_LOGLEVEL", d.webhooks_log_level),
            webhooks_metrics_port=env.int("WEBHOOKS_METRICS_PORT", d.webhooks_metrics_port),
            operator_keys_secret=env.secret("OPERATOR_KEYS_SECRET") or "",
            operator_redis_url=env.str("OPERATOR_REDIS_URL"),
            public_base_url=env.str("PUBLIC_BASE_URL", d.public_base_url),
            chain=ChainEndpoint.configured(env.str("CHAIN_RPC_URL"),
                                           env.str("TICKET_BROKER_ADDRESS")),
            gateway_address=gateway_address(env),
            metrics_refresh_seconds=env.float("METRICS_REFRESH_SECONDS", d.metrics_refresh_seconds),
            metrics_token=env.secret("METRICS_TOKEN") or "",
            recorder_metrics_port=env.int("RECORDER_METRICS_PORT", d.recorder_metrics_port),
            recorder_metrics_addr=env.str("RECORDER_METRICS_ADDR", d.recorder_metrics_addr),
            recorder_log_level=env.str("RECORDER_LOGLEVEL", d.recorder_log_level),
            recorder_linger_ms=env.int("RECORDER_LINGER_MS", d.recorder_linger_ms),
            controller_interval_seconds=env.seconds("CONTROLLER_INTERVAL_SECONDS",
                                                    d.controller_interval_seconds),
            controller_log_level=env.str("CONTROLLER_LOGLEVEL", d.controller_log_level),
            sweep_interval_seconds=env.seconds("SWEEP_INTERVAL_SECONDS", d.sweep_interval_seconds),
            sweep_grace_seconds=env.seconds("SWEEP_GRACE_SECONDS", d.sweep_grace_seconds),
            placement_target_wait_seconds=env.float("PLACEMENT_TARGET_WAIT_SECONDS",
                                                    d.placement_target_wait_seconds),
            placement_idle_seconds=env.float("PLACEMENT_IDLE_SECONDS", d.placement_idle_seconds),
            placement_cooldown_seconds=env.float("PLACEMENT_COOLDOWN_SECONDS",
                                                 d.placement_cooldown_seconds),
            watcher_interval_seconds=env.float("WATCHER_INTERVAL_SECONDS",
                                               d.watcher_interval_seconds),
            watcher_confirmations=env.int("WATCHER_CONFIRMATIONS", d.watcher_confirmations),
            watcher_from_block=env.int("WATCHER_FROM_BLOCK", d.watcher_from_block),
            watcher_log_level=env.str("WATCHER_LOGLEVEL", d.watcher_log_level),
            settle_interval_seconds=env.float("SETTLE_INTERVAL_SECONDS", d.settle_interval_seconds),
            settle_retry_max_seconds=env.float("SETTLE_RETRY_MAX_SECONDS", d.settle_retry_max_seconds),
            settle_view_max_age_seconds=env.float("SETTLE_VIEW_MAX_AGE_SECONDS",
                                                  d.settle_view_max_age_seconds),
            settler_log_level=env.str("SETTLER_LOGLEVEL", d.settler_log_level),
            max_face_value=env.int("MAX_FACE_VALUE", d.max_face_value),
            ticket_max_ev_fee_multiple=env.int("TICKET_MAX_EV_FEE_MULTIPLE", d.ticket_max_ev_fee_multiple),
            ticket_min_ev=env.int("TICKET_MIN_EV", d.ticket_min_ev),
            ticket_max_ev=env.int("TICKET_MAX_EV", d.ticket_max_ev),
            payments_unpaid_seconds=env.float("PAYMENTS_UNPAID_SECONDS", d.payments_unpaid_seconds),
        )

    def flask_config(self) -> dict:
        """What Flask itself reads from app.config."""
        return {"SECRET_KEY": self.secret_key, "MAX_CONTENT_LENGTH": self.upload_limit_bytes,
                "SESSION_COOKIE_NAME": "genai_dashboard", "SESSION_COOKIE_SAMESITE": "Strict",
                "SESSION_COOKIE_SECURE": self.session_cookie_secure}
