"""llm: a chat completion from a causal language model, on Livepeer's /llm route (its
LLMRequest and LLMResponse), also streamed, and in OpenAI's shape at /v1/chat/completions
(app/api/openai_compat.py).

Billing: the tokens processed (prompt and completion), as the worker counts them; Livepeer
charges max_tokens up front. Operators are not trusted to count, so the gateway bounds the
count at intake (billable_units) and the bill is the smaller of the two."""

import json
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from tasks.pipelines.base import (
    InvalidRequest, Limits, PipelineRequest, PipelineSpec, check_range,
)

MAX_TOKENS = 4096  # the longest completion any request may ask for (Limits.max_tokens)
MAX_PROMPT_CHARS = 32_000  # the messages' text, all together
MAX_MESSAGES = 256
# Tokens the chat template adds per message (role header, end of turn) and per prompt
# (begin of text, the assistant's header), bounded generously: Llama 3's are 5 and 5.
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS = 16
# The KV cache and activations of a request, per token of context (an 8B model in fp16
# with grouped-query attention: 128 KiB per token); a deliberate overestimate for smaller
# ones.
BYTES_PER_TOKEN = 256 * 1024


class LLMMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class LLMTokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LLMChoice(BaseModel):
    index: int
    finish_reason: str = ""
    message: LLMMessage | None = None
    delta: LLMMessage | None = None


class LLMResponse(BaseModel):
    id: str
    model: str
    created: int
    usage: LLMTokenUsage
    choices: list[LLMChoice]


def prompt_token_bound(messages: list[LLMMessage]) -> int:
    """The most tokens a prompt can be for any byte-level tokenizer (Llama 3, GPT-2, Qwen;
    SentencePiece with byte fallback too): never more than its UTF-8 bytes, plus what the
    chat template adds."""
    text_bytes = sum(len(m.role.encode()) + len(m.content.encode()) for m in messages)
    return text_bytes + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS


class LLMRequest(PipelineRequest):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    SUMMARY: ClassVar[str] = "Generate text with a language model (a chat completion)."
    RESPONSE: ClassVar[type[BaseModel]] = LLMResponse
    CAPS: ClassVar[dict] = {"max_tokens": ("maximum", "max_tokens"),
                            "messages": ("maxItems", MAX_MESSAGES)}

    # Livepeer names the model `model` on this route.
    model_id: str = Field("", alias="model", description="The model; \"\" means the default.")
    messages: list[LLMMessage]
    temperature: float = Field(0.7, description="0 is greedy; up to 2.")
    max_tokens: int = 256
    top_p: float = 1.0
    top_k: int = Field(-1, description="-1: no top-k.")
    stream: bool = Field(False, description="Answer a text/event-stream of chunks as the "
                         "tokens are generated.")
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1,
                             description="Seed of the sampling; the same seed and request "
                             "give the same text.")
    # Not the client's to say: the model's id as the answer names it (for_model).
    model_name: SkipJsonSchema[str] = ""

    def for_model(self, entry) -> None:
        self.model_name = entry.model_id

    def check(self, limits: Limits) -> None:
        if not self.messages:
            raise InvalidRequest("Messages cannot be empty.")
        check_range("max_tokens", self.max_tokens, 1, min(limits.max_tokens, MAX_TOKENS))
        if len(self.messages) > MAX_MESSAGES:
            raise InvalidRequest(f"At most {MAX_MESSAGES} messages.")
        if sum(len(m.content) for m in self.messages) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"The messages are longer than {MAX_PROMPT_CHARS} characters.")
        if not 0 <= self.temperature <= 2:
            raise InvalidRequest("temperature must be between 0 and 2.")
        if not 0 < self.top_p <= 1:
            raise InvalidRequest("top_p must be greater than 0 and at most 1.")
        if self.top_k < -1:
            raise InvalidRequest("top_k must be -1 (off) or positive.")

    def billable_units(self, uploads: dict) -> int:
        # The bound: what the worker may report is cut to it (used_units).
        return prompt_token_bound(self.messages) + self.max_tokens

    def used_units(self, outputs: list) -> int | None:
        usage = json.loads(outputs[0].raw())["usage"]
        return int(usage["prompt_tokens"]) + int(usage["completion_tokens"])

    def request_bytes(self, inputs: dict[str, bytes], scale: float = 1.0) -> int:
        return int(self.billable_units({}) * BYTES_PER_TOKEN * scale)


SPEC = PipelineSpec(
    "llm", LLMRequest, runner="workers.pipelines.llm:LLM",
    default_model="meta-llama/Llama-3.1-8B-Instruct",
    tiny_models={"tiny/llama": "devstack.tiny.language:build_llama"})
