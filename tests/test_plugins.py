"""Pipelines as plugins: a package from outside the project (examples/genai-embeddings),
installed beside it with no change to the project, adds a pipeline that the real gateway
serves, lists and bills, and a real worker process runs. It is installed into a folder of
its own on the processes' PYTHONPATH, so the shared environment is not changed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.servers import python_env
from devstack.stack import MODELS_DIR, ROOT
from support import TEST_MODELS, wait_status

EXAMPLE = ROOT / "examples" / "genai-embeddings"
MODEL = {"pipeline": "text-embedding", "model_id": "tiny/embed", "warm": True,
         "price_per_unit": 10, "pixels_per_unit": 1}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """The environment of processes that have the plugin installed."""
    target = tmp_path_factory.mktemp("plugin")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
                   check=True, cwd=tmp_path_factory.mktemp("build"))
    models = target.parent / "plugin-models.json"
    models.write_text(json.dumps(TEST_MODELS + [MODEL]))
    env = {"PYTHONPATH": str(target), "MODELS_FILE": str(models)}
    # Its tiny model, built by the dev stack's own builder from the plugin's registration.
    subprocess.run([sys.executable, "-m", "devstack.tiny", "--out", str(MODELS_DIR),
                    "tiny/embed"], check=True, cwd=ROOT,
                   env=python_env(env))
    return env


def plugin_operator(stack, plugin: dict) -> dict:
    """An operator registered by a gateway that has the plugin: its Redis user may use
    the plugin's queues (an operator's user reaches only registered pipelines' keys)."""
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "operators", "create",
                          "--name", "plugin-operator", "--address", "0x" + "5a" * 20],
                         check=True, cwd=ROOT, capture_output=True, text=True,
                         env=python_env({**stack.env, **plugin})).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def plugin_gateway(stack, recorder, plugin):
    stack.start_worker("plugin-slot0", "--models", "tiny/embed",
                       env={**plugin, **plugin_operator(stack, plugin)})
    return stack.start_gateway("plugin-gateway", workers=1, env=plugin)


def test_the_project_does_not_know_it(gateway, http, auth):
    assert http.post(f"{gateway}/text-embedding", json={"input": "x"},
                     headers=auth).status_code == 404
    assert "/text-embedding" not in http.get(f"{gateway}/openapi.json").json()["paths"]


def test_a_plugin_pipeline_runs_end_to_end(plugin_gateway, http, auth):
    spec = http.get(f"{plugin_gateway}/openapi.json").json()
    assert "/text-embedding" in spec["paths"]
    assert spec["components"]["schemas"]["EmbeddingRequest"]["properties"]["input"][
        "maxLength"] == 2000
    response = http.post(f"{plugin_gateway}/text-embedding",
                         json={"input": "a plugin pipeline", "model_id": ""},
                         headers={**auth, "Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    job = wait_status(http, plugin_gateway, auth, response.json()["id"], ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["worker"] == "plugin-slot0" and job["billable_units"] == len("a plugin pipeline")
    answer = job["result"]
    assert answer["dimensions"] == 32 and len(answer["embedding"]) == 32
    assert abs(sum(v * v for v in answer["embedding"]) - 1.0) < 1e-4
    # Synchronously too, and its own refusals in the house's shape.
    sync = http.post(f"{plugin_gateway}/text-embedding", json={"input": "a plugin pipeline"},
                     headers=auth)
    assert sync.status_code == 200 and sync.json() == answer
    empty = http.post(f"{plugin_gateway}/text-embedding", json={"input": " "}, headers=auth)
    assert empty.status_code == 400 and empty.json() == {"detail": {"msg": "input must be "
                                                                           "provided."}}
