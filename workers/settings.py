"""The operator's settings: a worker slot's (its command line, with defaults from the
environment) and the payee side that workers and the redeemer share. Read once, at
start, into frozen objects."""

from __future__ import annotations

import argparse
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from chain.broker import ChainEndpoint
from chain.recipient import DEFAULT_PARAMS_VALIDITY_BLOCKS, DEFAULT_TICKET_EV, Recipient, parse_secret
from chain.signature import address_of
from tasks.catalog import Catalog
from tasks.pipelines import PIPELINES
from tasks.settings import (
    DEFAULT_HEARTBEAT_SECONDS, DEFAULT_MODELS_DIR, DEFAULT_MODELS_FILE, DEFAULT_REDIS_URL, Env,
)
from workers.events import OperatorIdentity
from workers.pipelines.base import RunnerContext

NO_IDENTITY = ("OPERATOR_ID and OPERATOR_TOKEN are not set: `flask --app app operators create "
               "--name NAME --address 0x...` on the gateway prints them, with the REDIS_URL "
               "of this operator's Redis user.")


def operator_identity(env: Env) -> OperatorIdentity:
    """This operator's id and signing key; a worker or redeemer cannot run without."""
    operator_id, token = env.str("OPERATOR_ID"), env.secret("OPERATOR_TOKEN")
    if not operator_id or not token:
        raise SystemExit(NO_IDENTITY)
    try:
        return OperatorIdentity(int(operator_id), bytes.fromhex(token))
    except ValueError:
        raise SystemExit("OPERATOR_ID must be a number and OPERATOR_TOKEN hex: " + NO_IDENTITY)


def chain_endpoint(env: Env) -> ChainEndpoint | None:
    return ChainEndpoint.configured(env.str("CHAIN_RPC_URL"), env.str("TICKET_BROKER_ADDRESS"))


@dataclass(frozen=True)
class OperatorSettings:
    """An operator's payee side: who tickets pay, the HMAC secret behind its
    recipientRandHash and the EV it asks per ticket (recipient), and the key that sends
    redemptions (may be a hot wallet other than the address; the contract pays the
    ticket's recipient whoever sends the transaction)."""

    recipient: Recipient
    private_key: str | None

    @property
    def address(self) -> str:
        return self.recipient.address

    @classmethod
    def from_env(cls, env: Env | None = None) -> "OperatorSettings | None":
        """None when the operator has no address or no secret: it is simply not paid."""
        env = env or Env()
        key = env.secret("OPERATOR_PRIVATE_KEY")
        address = env.str("OPERATOR_ADDRESS") or (address_of(key) if key else None)
        raw_secret = env.secret("OPERATOR_SECRET")
        if not address or not raw_secret:
            return None
        recipient = Recipient(
            address, parse_secret(raw_secret), env.int("OPERATOR_TICKET_EV", DEFAULT_TICKET_EV),
            env.int("OPERATOR_PARAMS_VALIDITY_BLOCKS", DEFAULT_PARAMS_VALIDITY_BLOCKS))
        return cls(recipient, key)


@dataclass(frozen=True)
class RedeemerSettings:
    redis_url: str
    store_dir: str
    chain: ChainEndpoint | None
    operator: OperatorSettings | None
    identity: OperatorIdentity
    max_gas_price: int | None = None  # no redemption above this gas price (wei)
    batch_size: int = 20
    max_wait: float = 3600.0
    interval: float = 5.0
    # A redemption counts once its block is this deep (a reorg above it is redeemed again).
    confirmations: int = 6
    # A payment the chain could not check is retried with backoff up to this interval, with
    # no ceiling on the tries (the gateway sends it again too).
    retry_max_seconds: float = 60.0
    # Pin each round's block hash when nobody has (chain/rounds.py), paying the gas: for a
    # chain with no one else initializing rounds, as go-livepeer's -initializeRound.
    initialize_rounds: bool = False
    loglevel: str = "INFO"
    # Testing only: "kill-between-answers-and-winners" SIGKILLs the redeemer inside the
    # transaction that keeps a payment's answers and winners, after the answers are written
    # (tests/payments/test_payments_faults.py shows nothing is lost).
    fault: str | None = None

    @classmethod
    def from_env(cls, env: Env | None = None) -> "RedeemerSettings":
        env = env or Env()
        gas_cap = env.str("REDEEM_MAX_GAS_PRICE")
        return cls(redis_url=env.str("REDIS_URL", DEFAULT_REDIS_URL),
                   store_dir=env.str("REDEEMER_DIR", ".run/redeemer"),
                   chain=chain_endpoint(env), operator=OperatorSettings.from_env(env),
                   identity=operator_identity(env),
                   max_gas_price=int(gas_cap) if gas_cap else None,
                   batch_size=env.int("REDEEM_BATCH_SIZE", 20),
                   max_wait=env.float("REDEEM_MAX_WAIT_SECONDS", 3600.0),
                   interval=env.float("REDEEM_INTERVAL_SECONDS", 5.0),
                   confirmations=env.int("REDEEM_CONFIRMATIONS", 6),
                   retry_max_seconds=env.float("REDEEM_RETRY_MAX_SECONDS", 60.0),
                   initialize_rounds=env.flag("REDEEM_INITIALIZE_ROUNDS"),
                   loglevel=env.str("REDEEMER_LOGLEVEL", "INFO"),
                   fault=env.str("REDEEMER_FAULT") or None)


@dataclass(frozen=True)
class SlotSettings:
    worker_id: str
    identity: OperatorIdentity
    redis_url: str
    catalog: Catalog
    models_dir: Path
    device: str
    warm: list[tuple[str, str]] = field(default_factory=list)  # (pipeline, model_id)
    heartbeat_interval: float = DEFAULT_HEARTBEAT_SECONDS
    # Pipelines whose cold queues this slot consumes, loading models on demand.
    dynamic: list[str] = field(default_factory=list)
    budget_bytes: int | None = None  # memory for models and requests; None: no limit
    request_memory_scale: float = 1.0
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"
    metrics_host: str | None = None  # the host in the metrics URL, when not the address
    loglevel: str = "INFO"
    chain: ChainEndpoint | None = None
    operator: OperatorSettings | None = None
    # LoRA adapters: those named by a Hugging Face id the models file does not list are
    # loaded from the local model store or the Hugging Face cache only when allowed.
    local_loras: bool = False
    lora_cache_bytes: int = 2 * 1024**3

    def runner_context(self) -> RunnerContext:
        return RunnerContext(self.models_dir, self.local_loras, self.lora_cache_bytes)

    @property
    def operator_id(self) -> int:
        return self.identity.operator_id

    @property
    def hostname(self) -> str:
        """The Celery node name (Flower shows it)."""
        return f"{self.worker_id}@{socket.gethostname()}"


DEFAULT_SLOTS_PER_GPU = 1


def launcher_arguments(env: Env | None = None) -> argparse.ArgumentParser:
    """The launcher's own arguments; the rest of its command line goes to every slot."""
    env = env or Env()
    parser = argparse.ArgumentParser(description="Start one worker per GPU slot.")
    parser.add_argument("--gpus", default=env.str("WORKER_GPUS", "auto"),
                        help="comma-separated GPU indices, 'auto' (all visible) or 'none'")
    parser.add_argument("--slots-per-gpu", type=int,
                        default=env.int("WORKER_SLOTS_PER_GPU", DEFAULT_SLOTS_PER_GPU))
    parser.add_argument("--host", default=env.str("WORKER_HOST", socket.gethostname()))
    parser.add_argument("--metrics-port", type=int, default=env.int("WORKER_METRICS_PORT", 0),
                        help="slot i serves Prometheus metrics on this port + i (0: off)")
    return parser


def slot_arguments(env: Env) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run one worker slot.")
    parser.add_argument("--name", required=True, help="worker id, e.g. host-gpu0-slot0")
    parser.add_argument("--models-file", default=env.str("MODELS_FILE", DEFAULT_MODELS_FILE))
    parser.add_argument("--models-dir", default=env.str("MODELS_DIR", DEFAULT_MODELS_DIR))
    parser.add_argument("--redis-url", default=env.str("REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--device", default=env.str("WORKER_DEVICE") or None)
    parser.add_argument("--models", default=None,
                        help="comma-separated model ids to load warm (default: warm entries)")
    parser.add_argument("--dynamic", default=env.str("WORKER_DYNAMIC"),
                        help="pipelines whose models this slot loads on demand "
                             "(comma-separated, or 'all')")
    parser.add_argument("--memory-budget-gb", type=float,
                        default=env.float("WORKER_MEMORY_BUDGET_GB", None),
                        help="memory for models and requests (default on a GPU: 90%% of "
                             "its VRAM shared by its slots; on the CPU: no limit)")
    parser.add_argument("--request-memory-scale", type=float,
                        default=env.float("WORKER_REQUEST_MEMORY_SCALE", 1.0),
                        help="scales the estimate of a request's activation memory")
    parser.add_argument("--local-loras", action="store_true",
                        default=env.flag("WORKER_LOCAL_LORAS"),
                        help="load LoRA adapters named by a Hugging Face id from the "
                             "local model store or Hugging Face cache, not only those the "
                             "models file lists")
    parser.add_argument("--lora-cache-gb", type=float,
                        default=env.float("WORKER_LORA_CACHE_GB", 2.0),
                        help="memory for LoRA adapters kept loaded between jobs")
    parser.add_argument("--heartbeat", type=float,
                        default=env.seconds("WORKER_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS))
    parser.add_argument("--loglevel", default=env.str("WORKER_LOGLEVEL", "INFO"))
    parser.add_argument("--metrics-port", type=int, default=env.int("WORKER_METRICS_PORT", 0),
                        help="serve Prometheus metrics on this port (0: off)")
    parser.add_argument("--metrics-addr", default=env.str("WORKER_METRICS_ADDR", "127.0.0.1"),
                        help="address the metrics server binds (0.0.0.0: all); its URL "
                             "goes in the heartbeat, with WORKER_METRICS_HOST as the host "
                             "when set")
    return parser


def slot_settings(argv=None, env: Env | None = None) -> SlotSettings:
    env = env or Env()
    args = slot_arguments(env).parse_args(argv)
    catalog = Catalog.load(args.models_file)
    # --models "" loads nothing warm; without --models, the catalog's warm entries.
    chosen = {m for m in args.models.split(",") if m} if args.models is not None else None
    warm = [(e.pipeline, e.model_id) for e in catalog.entries
            if (e.model_id in chosen if chosen is not None else e.warm)]
    dynamic = catalog.pipelines() if args.dynamic == "all" else \
        [p for p in args.dynamic.split(",") if p]
    unknown = [p for p in dynamic if p not in PIPELINES]
    if unknown:
        raise SystemExit(f"--dynamic: unknown pipelines {unknown}")
    device = args.device or default_device()
    # The launcher tells each slot how many slots share its GPU.
    slots_per_gpu = env.int("WORKER_SLOTS_PER_GPU", DEFAULT_SLOTS_PER_GPU)
    return SlotSettings(
        worker_id=args.name, identity=operator_identity(env), redis_url=args.redis_url,
        catalog=catalog,
        models_dir=Path(args.models_dir), device=device, warm=warm,
        heartbeat_interval=args.heartbeat, dynamic=dynamic,
        budget_bytes=memory_budget(args.memory_budget_gb, device, slots_per_gpu),
        request_memory_scale=args.request_memory_scale, metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr, metrics_host=env.str("WORKER_METRICS_HOST") or None,
        loglevel=args.loglevel, chain=chain_endpoint(env),
        operator=_operator_or_unpaid(env), local_loras=args.local_loras,
        lora_cache_bytes=int(args.lora_cache_gb * 1024**3))


def _operator_or_unpaid(env: Env) -> OperatorSettings | None:
    """Invalid payment settings leave the worker running, unpaid, and say why."""
    try:
        return OperatorSettings.from_env(env)
    except ValueError as exc:
        logging.getLogger(__name__).error(
            "operator payment settings are invalid, this worker is not paid: %s", exc)
        return None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def memory_budget(gigabytes: float | None, device: str, slots_per_gpu: int) -> int | None:
    if gigabytes is not None:
        return int(gigabytes * 1024**3)
    if not device.startswith("cuda"):
        return None
    import torch

    return int(torch.cuda.get_device_properties(0).total_memory * 0.9 / slots_per_gpu)

