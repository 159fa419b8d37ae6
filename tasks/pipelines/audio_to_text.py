"""audio-to-text: a transcript of speech (Whisper), with timestamps per segment or word."""

from typing import ClassVar

from pydantic import BaseModel, Field

from tasks.pipelines.base import (
    LIVEPEER_ERRORS, InvalidRequest, Limits, PipelineRequest, PipelineSpec,
)

TIMESTAMPS = {"true": True, "1": True, "sentence": True, "false": False, "0": False,
              "word": "word"}
# Whisper's window: a request's memory is its count of windows decoded at once.
WINDOW_SECONDS = 30
BYTES_PER_WINDOW = 64 * 1024 * 1024


class Chunk(BaseModel):
    timestamp: list[float | None]
    text: str


class TranscriptResponse(BaseModel):
    text: str
    chunks: list[Chunk]


class AudioToTextRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("audio",)
    SUMMARY: ClassVar[str] = "Transcribe speech to text, with timestamps."
    RESPONSE: ClassVar[type[BaseModel]] = TranscriptResponse
    ERRORS: ClassVar[tuple[int, ...]] = (*LIVEPEER_ERRORS, 413, 415)

    return_timestamps: str = Field("true", description="'true' or 'sentence': timestamps per "
                                   "segment; 'word': per word; 'false': none.")

    def timestamps(self) -> bool | str:
        """Livepeer's reading of return_timestamps: True (segments), False or "word"."""
        return TIMESTAMPS[self.return_timestamps.strip().lower()]

    def check(self, limits: Limits) -> None:
        if self.return_timestamps.strip().lower() not in TIMESTAMPS:
            raise InvalidRequest("return_timestamps must be one of true, false, sentence, word.")

    def billable_units(self, uploads: dict) -> int:
        # Milliseconds of audio, from the container's header, as go-livepeer bills it.
        return uploads["audio"].duration_ms

    def request_bytes(self, inputs: dict[str, bytes], scale: float = 1.0) -> int:
        return int(BYTES_PER_WINDOW * scale)


SPEC = PipelineSpec(
    "audio-to-text", AudioToTextRequest, runner="workers.pipelines.audio_to_text:AudioToText",
    default_model="openai/whisper-large-v3",
    tiny_models={"tiny/whisper": "devstack.tiny.speech:build_whisper"})
