"""The OpenAPI 3 spec, generated from the registry of pipelines (their request and answer
schema classes, which also validate requests) and the operator's caps."""

from pydantic import BaseModel, Field

from app.api.openai_compat import ROUTE as CHAT_ROUTE, ChatCompletionRequest
from tasks.pipelines import PIPELINES
from tasks.pipelines.base import Limits, PipelineRequest
from tasks.pipelines.llm import LLMResponse

REF = "#/components/schemas/{model}"


class ErrorMessage(BaseModel):
    msg: str


class HTTPError(BaseModel):
    detail: ErrorMessage


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(BaseModel):
    detail: list[ValidationErrorItem]


class JobAccepted(BaseModel):
    id: str
    status: str = Field(description="queued")
    pipeline: str
    model_id: str
    created_at: str
    url: str
    events_url: str


class HistoryEntry(BaseModel):
    status: str
    at: str


class JobView(BaseModel):
    id: str
    status: str = Field(description="queued, started, succeeded, failed, canceled, aborted")
    pipeline: str
    model_id: str
    progress: float = Field(ge=0, le=1)
    worker: str | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    billable_units: int
    # Any pipeline's answer (the registry's answers, gathered below).
    result: dict | None
    error: str | None
    timings: dict[str, float] | None
    history: list[HistoryEntry]


def schema_of(model: type[BaseModel], components: dict) -> dict:
    """The model's JSON schema, its nested models moved into components."""
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def without_null(field: dict) -> dict:
    """A form field is sent or left out, never null: `int | None` is an optional integer."""
    kinds = [kind for kind in field.get("anyOf", ()) if kind != {"type": "null"}]
    if len(kinds) != 1:
        return field
    plain = {key: value for key, value in field.items() if key not in ("anyOf", "default")}
    return {**kinds[0], **plain}


def request_body(schema: type[BaseModel], components: dict, limits: Limits) -> dict:
    body = schema.model_json_schema(ref_template=REF)
    components.update(body.pop("$defs", {}))
    files = getattr(schema, "FILES", ())
    for name in files:
        body["properties"][name] = {"type": "string", "format": "binary",
                                    "maxLength": limits.upload_bytes}
    if files:
        body["required"] = sorted(set(body.get("required", [])) | set(files))
    caps = schema.caps(limits) if hasattr(schema, "caps") else {}
    for field, keywords in caps.items():
        body["properties"][field].update(keywords)
    content = getattr(schema, "CONTENT", "application/json")
    if content == "multipart/form-data":
        body["properties"] = {name: without_null(field)
                              for name, field in body["properties"].items()}
    components[schema.__name__] = body
    return {"required": True, "content": {content: {
        "schema": {"$ref": REF.format(model=schema.__name__)}}}}


STATUS_NAMES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Request Entity Too Large",
                415: "Unsupported Media Type", 422: "Validation Error",
                429: "Too many requests or jobs for this key (see Retry-After)",
                500: "Internal Server Error",
                503: "No worker can take the job now (see Retry-After)"}
# Ours on every route, beside the ones Livepeer declares: a body over the upload limit, a
# key over its rate or share, no capacity now.
OURS = (413, 429, 503)


def responses(ok: dict, components: dict, errors=(400, 401, 422, 500),
              ok_status: str = "200") -> dict:
    error = {"content": {"application/json": {"schema": schema_of(HTTPError, components)}}}
    invalid = {"content": {"application/json": {
        "schema": schema_of(HTTPValidationError, components)}}}
    answers = {ok_status: {"description": "Successful Response",
                           "content": {"application/json": {"schema": ok}}}}
    for status in sorted({*errors, *OURS}):
        answers[str(status)] = {"description": STATUS_NAMES[status],
                                **(invalid if status == 422 else error)}
    return answers


def streamed(operation: dict) -> dict:
    """An operation that answers a text/event-stream of chunks with "stream": true."""
    operation["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "data: {chunk} events, then data: [DONE]"}}
    return operation


def pipeline_operation(name: str, schema: type[PipelineRequest], components: dict,
                       limits: Limits) -> dict:
    ok = schema_of(schema.RESPONSE, components)
    operation = {
        "summary": schema.SUMMARY,
        "operationId": "gen" + "".join(p.capitalize() for p in name.split("-")),
        "tags": ["generate"],
        "requestBody": request_body(schema, components, limits),
        "responses": responses(ok, components, schema.ERRORS),
    }
    if "stream" in schema.model_fields:
        streamed(operation)
    return answers_async(operation, components)


def answers_async(operation: dict, components: dict) -> dict:
    """An operation that answers 202 with the job at once to Prefer: respond-async."""
    operation["parameters"] = [{
        "name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
        "description": "respond-async: answer 202 with the job at once "
                       "(other preferences are ignored, as RFC 7240 says)"}]
    operation["responses"]["202"] = {
        "description": "Accepted (Prefer: respond-async)",
        "content": {"application/json": {"schema": schema_of(JobAccepted, components)}}}
    return operation


def job_operation(summary: str, ok: dict, components: dict) -> dict:
    return {"summary": summary, "tags": ["jobs"],
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string", "format": "uuid"}}],
            "responses": responses(ok, components, errors=(400, 401, 404, 422, 500))}


def chat_operation(components: dict, limits: Limits) -> dict:
    return answers_async(streamed({
        "summary": "A chat completion in OpenAI's shape (the llm pipeline).",
        "operationId": "chatCompletions", "tags": ["openai"],
        "requestBody": request_body(ChatCompletionRequest, components, limits),
        "responses": responses(schema_of(LLMResponse, components), components),
    }), components)


def build_spec(limits: Limits | None = None) -> dict:
    limits = limits or Limits()
    components: dict = {}
    paths = {spec.path: {"post": pipeline_operation(spec.name, spec.request, components,
                                                    limits)}
             for spec in PIPELINES.values()}
    paths[CHAT_ROUTE] = {"post": chat_operation(components, limits)}
    view = schema_of(JobView, components)
    components["JobView"]["properties"]["result"] = {"anyOf": [
        schema_of(spec.response, components) for spec in PIPELINES.values()] + [
        {"type": "null"}]}
    paths["/jobs/{job_id}"] = {"get": job_operation(
        "A job's status, progress and result.", view, components)}
    paths["/health"] = {"get": {"summary": "Gateway, database and broker health.",
                                "tags": ["ops"], "security": [],
                                "responses": {"200": {"description": "healthy"},
                                              "503": {"description": "degraded"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "genai-network gateway", "version": "0.1.0",
                 "description": "Livepeer's AI gateway API, served from queues."},
        "servers": [{"url": "/"}],
        "security": [{"HTTPBearer": []}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "HTTPBearer": {"type": "http", "scheme": "bearer"}}},
    }
