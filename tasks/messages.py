"""The shapes of what travels between gateway and workers, as JSON."""

import base64

from pydantic import BaseModel, Field


class JobMessage(BaseModel):
    """What a worker needs to run a job: no database, no gateway."""

    job_id: str
    pipeline: str
    model_id: str
    queue: str
    params: dict
    inputs: dict[str, str] = Field(default_factory=dict)  # name -> base64 bytes
    deadline: float | None = None  # unix time after which the job must not start
    time_limit: float | None = None  # seconds the job may run once started
    enqueued_at: float | None = None
    attempt: int = 1
    declines: int = 0  # workers that sent it back for lack of room
    priority: int = 3  # kombu's Redis priority step: 0 is taken first
    # The gateway's ticket-sender address: the operator writes its ticket params for it.
    sender: str | None = None


# The content type of a text output (image-to-text): the answer itself, not a media file.
TEXT = "text/plain; charset=utf-8"


class Output(BaseModel):
    data: str  # base64
    content_type: str
    seed: int
    nsfw: bool = False

    @classmethod
    def from_bytes(cls, data: bytes, content_type: str, seed: int, nsfw: bool = False):
        return cls(data=encode_bytes(data), content_type=content_type, seed=seed, nsfw=nsfw)

    @classmethod
    def from_text(cls, text: str, seed: int):
        return cls.from_bytes(text.encode(), TEXT, seed)

    def raw(self) -> bytes:
        return decode_bytes(self.data)


class WorkerEvent(BaseModel):
    """A change of a job's state reported by a worker (or the controller, for a worker
    it lost) to the gateway's recorder."""

    job_id: str
    status: str  # a JobStatus but queued, or REQUEUED (tasks/status.py)
    at: float
    started_at: float | None = None  # on final events, so history is whole in any order
    worker: str
    attempt: int = 1
    outputs: list[Output] = Field(default_factory=list)
    error: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    # On succeeded events of a paid operator: its TicketParams (chain.TicketParams.to_dict()).
    payment: dict | None = None


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_bytes(data: str) -> bytes:
    return base64.b64decode(data)
