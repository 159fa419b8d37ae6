"""What an operator's processes tell the gateway: signed messages appended to the
operator's own events stream (tasks/envelope.py), the one key of the gateway's that
its Redis user may write."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from tasks import envelope
from tasks.messages import WorkerEvent
from tasks.names import operator_events


@dataclass(frozen=True)
class OperatorIdentity:
    """Who this operator is to the gateway: its id and the key its messages are signed
    with (`flask --app app operators create` prints both once)."""

    operator_id: int
    key: bytes


class EventSender:
    def __init__(self, redis, identity: OperatorIdentity):
        self.redis = redis
        self.identity = identity
        self.stream = operator_events(identity.operator_id)

    def send(self, kind: str, body: BaseModel | bytes, blobs: tuple[bytes, ...] = (),
             pipe=None) -> None:
        """Appends the signed message, at once or in `pipe` (sent by its caller)."""
        raw = body if isinstance(body, bytes) else body.model_dump_json().encode()
        message = envelope.Envelope(self.identity.operator_id, kind, raw, blobs)
        (pipe if pipe is not None else self.redis).xadd(self.stream,
                                                        message.fields(self.identity.key))

    def job_event(self, event: WorkerEvent, pipe=None) -> None:
        self.send(envelope.JOB, event, event.blobs(), pipe)
