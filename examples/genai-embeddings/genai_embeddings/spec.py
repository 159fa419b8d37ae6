"""The contract side: the request, its answer, what it bills, the runner's and the tiny
model's names. Imported by the gateway and the workers alike, so it imports nothing of
the processes (runner and builder are named as strings)."""

from typing import ClassVar

from pydantic import BaseModel, Field

from tasks.pipelines.base import (
    MAX_PROMPT_CHARS, InvalidRequest, Limits, PipelineRequest, PipelineSpec, check_text,
)


class EmbeddingResponse(BaseModel):
    embedding: list[float]
    dimensions: int


class EmbeddingRequest(PipelineRequest):
    SUMMARY: ClassVar[str] = "Embed a text as a vector (a plugin pipeline)."
    RESPONSE: ClassVar[type[BaseModel]] = EmbeddingResponse
    CAPS: ClassVar[dict] = {"input": ("maxLength", MAX_PROMPT_CHARS)}

    input: str = Field("", description="The text to embed.")

    def check(self, limits: Limits) -> None:
        if not self.input.strip():
            raise InvalidRequest("input must be provided.")
        check_text("input", self.input)

    def billable_units(self, uploads: dict) -> int:
        return len(self.input)


SPEC = PipelineSpec(
    "text-embedding", EmbeddingRequest, runner="genai_embeddings.runner:TextEmbedding",
    default_model="sentence-transformers/all-MiniLM-L6-v2",
    tiny_models={"tiny/embed": "genai_embeddings.tiny:build_tiny_encoder"})
