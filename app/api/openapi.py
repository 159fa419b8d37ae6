"""The OpenAPI 3 spec, generated from the schema classes that validate requests."""

from pydantic import BaseModel, Field

from tasks.pipelines import PIPELINES
from tasks.pipelines.base import ImageResponse, PipelineRequest, TextResponse

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
    result: ImageResponse | TextResponse | None
    error: str | None
    timings: dict[str, float] | None
    history: list[HistoryEntry]


def schema_of(model: type[BaseModel], components: dict) -> dict:
    """The model's JSON schema, its nested models moved into components."""
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def request_body(schema: type[PipelineRequest], components: dict) -> dict:
    body = schema.model_json_schema(ref_template=REF)
    components.update(body.pop("$defs", {}))
    if schema.FILES:
        for name in schema.FILES:
            body["properties"][name] = {"type": "string", "format": "binary"}
        body["required"] = sorted(set(body.get("required", [])) | set(schema.FILES))
    components[schema.__name__] = body
    return {"required": True, "content": {schema.CONTENT: {
        "schema": {"$ref": REF.format(model=schema.__name__)}}}}


def responses(ok: dict, components: dict, ok_status: str = "200") -> dict:
    error = {"content": {"application/json": {"schema": schema_of(HTTPError, components)}}}
    invalid = {"content": {"application/json": {
        "schema": schema_of(HTTPValidationError, components)}}}
    return {
        ok_status: {"description": "Successful Response",
                    "content": {"application/json": {"schema": ok}}},
        "400": {"description": "Bad Request", **error},
        "401": {"description": "Unauthorized", **error},
        "413": {"description": "Request too large", **error},
        "415": {"description": "Unsupported media type", **error},
        "422": {"description": "Validation Error", **invalid},
        "500": {"description": "Internal Server Error", **error},
        "503": {"description": "No worker can take the job now (see Retry-After)", **error},
    }


def pipeline_operation(name: str, schema: type[PipelineRequest], components: dict) -> dict:
    ok = schema_of(schema.RESPONSE, components)
    operation = {
        "summary": schema.SUMMARY,
        "operationId": "gen" + "".join(p.capitalize() for p in name.split("-")),
        "tags": ["generate"],
        "parameters": [{"name": "Prefer", "in": "header", "required": False,
                        "schema": {"type": "string", "enum": ["respond-async"]},
                        "description": "respond-async: answer 202 with the job at once"}],
        "requestBody": request_body(schema, components),
        "responses": responses(ok, components),
    }
    operation["responses"]["202"] = {
        "description": "Accepted (Prefer: respond-async)",
        "content": {"application/json": {"schema": schema_of(JobAccepted, components)}}}
    return operation


def job_operation(summary: str, ok: dict, components: dict) -> dict:
    return {"summary": summary, "tags": ["jobs"],
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": responses(ok, components)}


def build_spec() -> dict:
    components: dict = {}
    paths = {f"/{spec.name}": {"post": pipeline_operation(spec.name, spec.request, components)}
             for spec in PIPELINES.values()}
    paths["/jobs/{job_id}"] = {"get": job_operation(
        "A job's status, progress and result.", schema_of(JobView, components), components)}
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
