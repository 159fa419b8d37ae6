"""Hostile input: schemathesis fuzzes every operation of /openapi.json against the
gateway (in-process, the real database, broker and workers behind it), with valid input
(positive) and invalid input (negative), under schemathesis' default checks: no
unexpected 5xx, every status and answer documented by our spec, invalid data refused,
valid data accepted. Then the routes we share with Livepeer's own gateway are fuzzed with
invalid input against Livepeer's spec (a copy: tests/reference/), so that the official
SDK, which is generated from it, reads every refusal we give."""

import pathlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

LIVEPEER_SPEC = pathlib.Path(__file__).parent / "reference" / "livepeer-gateway.openapi.yaml"
# Small caps, so that every valid job the fuzzer makes is cheap for the tiny models.
FUZZ_LIMITS = {"max_image_side": 64, "max_steps": 2, "max_images_per_request": 1,
               "max_llm_tokens": 8, "sync_timeout_seconds": 30}
# Hypothesis' health checks are kept but for these two: our request schemas are large
# (multipart forms with many optional fields), so examples are big and slow to make.
TOLERATED = [HealthCheck.too_slow, HealthCheck.data_too_large]
# Livepeer routes we do not serve (live video is a different product).
NOT_SHARED = {"/live-video-to-video"}


@pytest.fixture(scope="session")
def fuzz_app(app, worker, recorder, controller):
    """A second gateway app beside `app` (whose fixture set the environment)."""
    from dataclasses import replace

    from app import create_app
    from app.settings import Settings

    return create_app(replace(Settings.from_env(), **FUZZ_LIMITS), testing=True)


def with_our_key(schema):
    """The key is ours to give (every call passes it): schemathesis makes no
    Authorization header of its own, valid or invalid."""
    schema.config.generation.with_security_parameters = False
    return schema


@pytest.fixture(scope="session")
def api_schema(fuzz_app):
    return with_our_key(schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app))


@pytest.fixture(scope="session")
def livepeer_schema(fuzz_app):
    schema = schemathesis.openapi.from_path(LIVEPEER_SPEC)
    schema.app = fuzz_app
    return with_our_key(schema)


def no_unexpected_server_error(ctx, response, case):
    """Replaces schemathesis' not_a_server_error: 503 (no capacity, with Retry-After) and
    504 (a sync wait that ran out) are part of the API; any other 5xx is a bug."""
    if response.status_code >= 500 and response.status_code not in (503, 504):
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
    if response.status_code == 503:
        assert "retry-after" in {name.lower() for name in response.headers}


def valid_data_is_accepted(ctx, response, case):
    """Replaces positive_data_acceptance, whose only miss is what no OpenAPI schema can
    say: an upload that is a valid binary string but not a decodable image (400) or sound
    (415, as Livepeer's audio routes answer), or sizes past the operator's caps (400, 413),
    is refused with our message, never a 5xx or a 422."""
    if response.status_code in (400, 413, 415):
        assert response.json()["detail"]["msg"]
        return
    positive_data_acceptance(ctx, response, case)


def operations(schema, paths: set[str] | None = None):
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if paths is None or op.path in paths]


def takes_input(operation) -> bool:
    return bool(operation.definition.raw.get("parameters")
                or operation.definition.raw.get("requestBody"))


def fuzz(operation, mode: GenerationMode, headers: dict, max_examples: int, **validate):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=TOLERATED)
    def run(case):
        case.call_and_validate(headers=headers, **validate)

    try:
        run()
    except Exception as failure:
        failure.add_note(f"while fuzzing {operation.label} ({mode.value})")
        raise


def test_every_operation_is_fuzzed(api_schema, livepeer_schema):
    paths = {op.path for op in operations(api_schema)}
    assert {"/text-to-image", "/image-to-image", "/image-to-video", "/upscale",
            "/image-to-text", "/audio-to-text", "/text-to-speech", "/llm",
            "/segment-anything-2", "/v1/chat/completions", "/jobs/{job_id}"} <= paths
    # Every Livepeer route but live video is one of ours.
    assert {op.path for op in operations(livepeer_schema)} - NOT_SHARED <= paths


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_api(api_schema, api_key, mode):
    # Asynchronous, so that the valid jobs the fuzzer makes are queued, not waited for.
    headers = {"Authorization": f"Bearer {api_key}", "Prefer": "respond-async"}
    for operation in operations(api_schema):
        if mode == GenerationMode.NEGATIVE and not takes_input(operation):
            continue  # nothing to make invalid (GET /health)
        fuzz(operation, mode, headers, 30,
             excluded_checks=[not_a_server_error, positive_data_acceptance],
             additional_checks=[no_unexpected_server_error, valid_data_is_accepted])


def test_livepeer_spec_reads_every_refusal(livepeer_schema, api_key):
    """Invalid input to a shared route is refused with a status and a body Livepeer's spec
    documents (HTTPError or HTTPValidationError), which the SDK turns into its errors."""
    headers = {"Authorization": f"Bearer {api_key}"}
    shared = {op.path for op in operations(livepeer_schema)} - NOT_SHARED
    for operation in operations(livepeer_schema, shared):
        fuzz(operation, GenerationMode.NEGATIVE, headers, 30,
             checks=[no_unexpected_server_error, status_code_conformance,
                     response_schema_conformance])
