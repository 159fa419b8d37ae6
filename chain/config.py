"""Chain settings from the environment, for every process that pays or gets paid.

A secret comes from NAME or from the file named by NAME_FILE (Docker secrets, a key file
under .run/), so it need not sit in the environment of every process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from .codec import hex_to_bytes, to_address
from .recipient import MIN_SECRET_BYTES


class ChainNotConfigured(RuntimeError):
    pass


def secret(name: str, environ=os.environ) -> str | None:
    """$NAME, else the contents of the file $NAME_FILE, else None."""
    value = environ.get(name)
    if value:
        return value.strip()
    path = environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return None


def address_of(private_key: str) -> str:
    return Account.from_key(private_key).address


@dataclass(frozen=True)
class ChainSettings:
    rpc_url: str
    broker_address: str

    @classmethod
    def from_env(cls, environ=os.environ) -> "ChainSettings | None":
        """None when no chain is configured: payments are off, jobs still run."""
        rpc, broker = environ.get("CHAIN_RPC_URL"), environ.get("TICKET_BROKER_ADDRESS")
        if not rpc or not broker:
            return None
        return cls(rpc, to_address(broker))

    @classmethod
    def require(cls, environ=os.environ) -> "ChainSettings":
        settings = cls.from_env(environ)
        if settings is None:
            raise ChainNotConfigured("set CHAIN_RPC_URL and TICKET_BROKER_ADDRESS")
        return settings


def gateway_key(environ=os.environ) -> str | None:
    """The key the gateway signs tickets and funds its deposit with."""
    return secret("GATEWAY_PRIVATE_KEY", environ)


def gateway_address(environ=os.environ) -> str | None:
    """GATEWAY_ADDRESS, else the address of the gateway's key: processes that only need to
    know who pays (the gateway's web tier, the watcher) can do without the key."""
    if environ.get("GATEWAY_ADDRESS"):
        return to_address(environ["GATEWAY_ADDRESS"])
    key = gateway_key(environ)
    return address_of(key) if key else None


@dataclass(frozen=True)
class OperatorSettings:
    """An operator's payee side: who tickets pay (address), the HMAC secret behind its
    recipientRandHash, and the key that sends redemptions (may be a hot wallet other than
    the address; the contract pays the ticket's recipient whoever sends the transaction)."""

    address: str
    secret: bytes
    private_key: str | None
    ticket_ev: int
    params_validity_blocks: int

    @classmethod
    def from_env(cls, environ=os.environ) -> "OperatorSettings | None":
        """None when the operator has no address or no secret: it is simply not paid."""
        key = secret("OPERATOR_PRIVATE_KEY", environ)
        address = environ.get("OPERATOR_ADDRESS") or (address_of(key) if key else None)
        raw_secret = secret("OPERATOR_SECRET", environ)
        if not address or not raw_secret:
            return None
        return cls(
            address=to_address(address),
            secret=parse_secret(raw_secret),
            private_key=key,
            ticket_ev=int(environ.get("OPERATOR_TICKET_EV", DEFAULT_TICKET_EV)),
            params_validity_blocks=int(environ.get("OPERATOR_PARAMS_VALIDITY_BLOCKS", "1000")),
        )


# go-livepeer's default -ticketEV: 1000 gwei.
DEFAULT_TICKET_EV = 10**12


def parse_secret(text: str) -> bytes:
    """A hex secret (0x optional) as its bytes, any other text as its UTF-8 bytes."""
    try:
        raw = hex_to_bytes(text)
    except ValueError:
        raw = text.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"OPERATOR_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return raw
