"""What an operator's processes say to the gateway, signed: one entry of the operator's
events stream (names.operator_events) holds a kind, a JSON body, binary blobs (a job's
outputs) and an HMAC-SHA256 over all of them under the operator's key.

The key is derived by the gateway from its own secret and the operator's id, so the
gateway stores none; `flask --app app operators create` prints it once, and the
operator's workers and redeemer sign with it (OPERATOR_TOKEN). The gateway believes a
message only when the stream it came from, the operator it names and its MAC agree."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

KEY_DOMAIN = b"genai/operator-key/v1/"

# Kinds of message.
JOB = "job"  # a WorkerEvent: started, progress, a final status, requeued
SLOT = "slot"  # a slot started (its boot id): its predecessor's claims are lost
RECEIPT = "receipt"  # the redeemer's verdicts on a payment's tickets
PARAMS = "params"  # fresh ticket params for debts the gateway asked about
KINDS = frozenset({JOB, SLOT, RECEIPT, PARAMS})


class BadEnvelope(ValueError):
    """Unsigned, signed with another key, malformed, or of an unknown kind."""


def operator_key(gateway_secret: bytes, operator_id: int) -> bytes:
    return hmac.new(gateway_secret, KEY_DOMAIN + str(operator_id).encode(),
                    hashlib.sha256).digest()


@dataclass(frozen=True)
class Envelope:
    operator_id: int
    kind: str
    body: bytes  # JSON
    blobs: tuple[bytes, ...] = ()

    def mac(self, key: bytes) -> str:
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in (str(self.operator_id).encode(), self.kind.encode(), self.body,
                     *(hashlib.sha256(blob).digest() for blob in self.blobs)):
            mac.update(len(part).to_bytes(8, "big"))  # no two layouts give one MAC
            mac.update(part)
        return mac.hexdigest()

    def fields(self, key: bytes) -> dict[str, bytes]:
        """The stream entry, signed."""
        fields = {"operator": str(self.operator_id).encode(), "kind": self.kind.encode(),
                  "body": self.body}
        fields.update({f"blob:{i}": blob for i, blob in enumerate(self.blobs)})
        fields["mac"] = self.mac(key).encode()
        return fields

    @classmethod
    def opened(cls, fields: dict[bytes, bytes], key_for) -> "Envelope":
        """The envelope of a stream entry, once its MAC checks out under key_for(operator
        id) (None for an operator that is unknown or revoked); raises BadEnvelope."""
        try:
            operator_id = int(fields[b"operator"])
            kind = fields[b"kind"].decode()
            body, mac = fields[b"body"], fields[b"mac"].decode()
            blobs = tuple(fields[f"blob:{i}".encode()]
                          for i in range(sum(1 for name in fields if name.startswith(b"blob:"))))
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise BadEnvelope(f"malformed: {exc!r}") from None
        if kind not in KINDS:
            raise BadEnvelope(f"unknown kind {kind!r}")
        key = key_for(operator_id)
        if key is None:
            raise BadEnvelope(f"operator {operator_id} is unknown or revoked")
        envelope = cls(operator_id, kind, body, blobs)
        if not hmac.compare_digest(envelope.mac(key), mac):
            raise BadEnvelope("bad signature")
        return envelope
