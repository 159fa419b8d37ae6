"""/v1/chat/completions in OpenAI's shape, so that OpenAI's own clients work unchanged
(base_url = the gateway + "/v1", api_key = a key of ours): the same llm pipeline and job
machinery as Livepeer's /llm, with OpenAI's request fields and defaults. The worker's
answer is already OpenAI's chat.completion (and its stream chunks chat.completion.chunk),
so answers pass as they are."""

from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from app.api import pipelines
from app.api.auth import authenticate
from app.api.errors import ApiError
from tasks.pipelines.llm import MAX_TOKENS, LLMMessage, LLMRequest

bp = Blueprint("openai", __name__)
ROUTE = "/v1/chat/completions"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]

    def plain(self) -> LLMMessage:
        if isinstance(self.content, str):
            text = self.content
        elif any(part.type != "text" for part in self.content):
            raise ApiError(400, "Only text content parts are supported.")
        else:
            text = "".join(part.text for part in self.content)
        return LLMMessage(role="system" if self.role == "developer" else self.role,
                          content=text)


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request, the fields this network serves."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field("", description="The model; \"\" means the default.")
    messages: list[ChatMessage]
    temperature: float = 1.0  # OpenAI's default (Livepeer's /llm: 0.7)
    top_p: float = 1.0
    max_tokens: int | None = Field(None, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, le=MAX_TOKENS)
    n: int = 1
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    stream: bool = False

    def livepeer(self) -> LLMRequest:
        if self.n != 1:
            raise ApiError(400, "Only n=1 is supported.")
        limit = self.max_completion_tokens or self.max_tokens
        return LLMRequest(model=self.model, messages=[m.plain() for m in self.messages],
                          temperature=self.temperature, top_p=self.top_p, seed=self.seed,
                          stream=self.stream,
                          **({"max_tokens": limit} if limit is not None else {}))


@bp.post(ROUTE)
def chat_completions():
    key = authenticate()
    body = ChatCompletionRequest.model_validate(pipelines.json_body(LLMRequest))
    return pipelines.submit(key, "llm", body.livepeer(), {})
