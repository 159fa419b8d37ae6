"""The shapes of what travels between gateway and workers, as JSON."""

import base64
import json

from pydantic import BaseModel, Field


class InputLink(BaseModel):
    """An upload too large to travel in the message: where the worker fetches it (the
    gateway's signed link), and what it must be."""

    url: str
    size: int
    sha256: str


class JobMessage(BaseModel):
    """What a worker needs to run a job: no database; no gateway but for fetching the
    uploads that come as links."""

    job_id: str
    pipeline: str
    model_id: str
    queue: str
    params: dict
    inputs: dict[str, str] = Field(default_factory=dict)  # name -> base64 bytes
    input_links: dict[str, InputLink] = Field(default_factory=dict)  # the larger ones
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
# A JSON answer (llm, audio-to-text, segment-anything-2): the route's answer itself, as
# the runner wrote it, not a media file.
ANSWER = "application/vnd.genai.answer+json"


class Output(BaseModel):
    """One output of a job. Its bytes travel beside the event's JSON (a blob of the
    operator's signed envelope, tasks/envelope.py), never inside it."""

    data: bytes = Field(b"", exclude=True, repr=False)
    content_type: str
    seed: int
    nsfw: bool = False
    size: int = 0  # of data, said in the JSON so the recorder can check the blob

    @classmethod
    def from_bytes(cls, data: bytes, content_type: str, seed: int, nsfw: bool = False):
        return cls(data=data, content_type=content_type, seed=seed, nsfw=nsfw, size=len(data))

    @classmethod
    def from_text(cls, text: str, seed: int):
        return cls.from_bytes(text.encode(), TEXT, seed)

    @classmethod
    def from_answer(cls, body: dict, seed: int):
        return cls.from_bytes(json.dumps(body).encode(), ANSWER, seed)

    def raw(self) -> bytes:
        return self.data


class WorkerEvent(BaseModel):
    """What became of a job, reported by the worker that took it (or, for a worker it
    lost, by the gateway's controller) to the gateway's recorder."""

    job_id: str
    status: str  # a JobStatus but queued, PROGRESS or REQUEUED (tasks/status.py)
    at: float
    started_at: float | None = None  # on final events, so history is whole in any order
    worker: str
    boot: str = ""  # the worker process's incarnation: who claimed the attempt
    attempt: int = 1
    outputs: list[Output] = Field(default_factory=list)
    error: str | None = None
    # On failed events: 400-499 when the model refused the request itself (a text with
    # nothing it can speak), which a synchronous client is answered; else a 500.
    error_status: int | None = Field(default=None, ge=400, le=499)
    timings: dict[str, float] = Field(default_factory=dict)
    step: int | None = None  # progress events: step of total
    total: int | None = None
    # Progress events of a streamed answer (llm): its chunks since the last event.
    chunks: list[dict] = Field(default_factory=list)
    # On succeeded events of a paid operator: its TicketParams (chain.TicketParams.to_dict()),
    # when the worker could make them, and its address (payee), always: the job is owed
    # even without params. The gateway owes the registered operator's address.
    payment: dict | None = None
    payee: str | None = None
    # On succeeded events of pipelines billed by what the worker counted (llm: tokens):
    # its count, which the gateway bounds by its own at intake (the bill is the smaller).
    units: int | None = None

    def with_blobs(self, blobs: tuple[bytes, ...]) -> "WorkerEvent":
        """The event with its outputs' bytes put back from the envelope's blobs; raises
        ValueError when they do not match what the event says of them."""
        if len(blobs) != len(self.outputs):
            raise ValueError(f"{len(self.outputs)} outputs but {len(blobs)} blobs")
        for output, blob in zip(self.outputs, blobs):
            if output.size != len(blob):
                raise ValueError("an output's size does not match its blob")
        outputs = [o.model_copy(update={"data": blob}) for o, blob in zip(self.outputs, blobs)]
        return self.model_copy(update={"outputs": outputs})

    def blobs(self) -> tuple[bytes, ...]:
        return tuple(output.data for output in self.outputs)


class SlotStarted(BaseModel):
    """A worker process that started: a predecessor of the same name (it died, and its
    launcher restarted it) lost its claims."""

    worker: str
    boot: str
    at: float


class PaymentReceipt(BaseModel):
    """An operator's redeemer's verdicts on a job's tickets: per ticket its sender nonce,
    a rejection reason or None, whether it won, and whether it is a copy answered again."""

    job_id: str
    results: list[dict]


class FreshParams(BaseModel):
    """Ticket params an operator's redeemer made for a job the gateway owes it, on the
    gateway's request (chain.TicketParams.to_dict())."""

    job_id: str
    params: dict


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_bytes(data: str) -> bytes:
    return base64.b64decode(data)
