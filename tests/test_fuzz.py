"""Hostile input: schemathesis fuzzes every operation of /openapi.json against the
gateway (in-process, the real database, broker and workers behind it). No answer may be
an unexpected 5xx, hang, or break its documented shape."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

# Small caps, so that every valid job the fuzzer makes is cheap for the tiny models.
FUZZ_LIMITS = {"max_image_side": 64, "max_steps": 2, "max_images_per_request": 1,
               "max_llm_tokens": 8, "sync_timeout_seconds": 30}


@pytest.fixture(scope="session")
def fuzz_app(app, worker, recorder, controller):
    """A second gateway app beside `app` (whose fixture set the environment)."""
    from dataclasses import replace

    from app import create_app
    from app.settings import Settings

    return create_app(replace(Settings.from_env(), **FUZZ_LIMITS), testing=True)


@pytest.fixture(scope="session")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def no_unexpected_server_error(ctx, response, case):
    """503 (no capacity, with Retry-After) and 504 (a sync wait that ran out) are part of
    the API; any other 5xx is a bug."""
    if response.status_code >= 500 and response.status_code not in (503, 504):
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
    if response.status_code == 503:
        assert "retry-after" in {name.lower() for name in response.headers}


def operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


def test_every_operation_is_fuzzed(api_schema):
    paths = {op.path for op in operations(api_schema)}
    assert {"/text-to-image", "/image-to-image", "/image-to-video", "/upscale",
            "/image-to-text", "/audio-to-text", "/text-to-speech", "/llm",
            "/segment-anything-2", "/v1/chat/completions", "/jobs/{job_id}"} <= paths


def test_fuzz_api(api_schema, api_key):
    # Asynchronous, so that the valid jobs the fuzzer makes are queued, not waited for.
    headers = {"Authorization": f"Bearer {api_key}", "Prefer": "respond-async"}
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=[no_unexpected_server_error,
                                                            response_schema_conformance])

        fuzz()
