"""Coercions between Python values and the fixed-width types of the ticket ABI.

Messages travel as JSON, where big numbers are decimal strings (JavaScript loses precision above
2**53) and bytes are 0x-hex; these helpers accept either form and refuse out-of-range values early,
so a bad message fails where it is parsed rather than deep in the hashing.
"""

from __future__ import annotations

from eth_utils import is_address, to_checksum_address

UINT256_MAX = 2**256 - 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = bytes(32)


def to_address(value: str | bytes) -> str:
    """A checksummed 0x address from hex (with or without 0x, any case) or 20 raw bytes."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 20:
            raise ValueError(f"an address is 20 bytes, got {len(value)}")
        value = "0x" + bytes(value).hex()
    text = value if value.startswith(("0x", "0X")) else "0x" + value
    if not is_address(text.lower()):
        raise ValueError(f"not an address: {value!r}")
    return to_checksum_address(text.lower())


def to_uint256(value: int | str) -> int:
    """An int in [0, 2**256) from an int, a decimal string or a 0x-hex string."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a uint256")
    if isinstance(value, str):
        value = int(value, 16) if value.startswith(("0x", "0X")) else int(value, 10)
    if not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"out of uint256 range: {value}")
    return value


def to_bytes_n(value: bytes | str, size: int) -> bytes:
    """Exactly `size` bytes from raw bytes or hex (0x optional)."""
    raw = hex_to_bytes(value) if isinstance(value, str) else bytes(value)
    if len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return raw


def to_bytes32(value: bytes | str) -> bytes:
    return to_bytes_n(value, 32)


def hex_to_bytes(value: str) -> bytes:
    text = value[2:] if value.startswith(("0x", "0X")) else value
    return bytes.fromhex(text)


def to_hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def uint256_bytes(value: int) -> bytes:
    """The 32-byte big-endian word that abi.encodePacked(uint256) produces."""
    return to_uint256(value).to_bytes(32, "big")


def address_bytes(address: str) -> bytes:
    return hex_to_bytes(to_address(address))
