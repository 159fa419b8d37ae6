"""Checks the worker runtime's GPU behaviour on a machine with an NVIDIA GPU (not run by
`make test` or `make bench`: CI has no GPU). With real worker processes on a loopback stack:

1. two slots on one GPU run jobs at the same time;
2. two models are held on one GPU by one slot (warm + loaded on demand);
3. SIGTERM gives the VRAM back (the slot's process is gone from nvidia-smi).

    python bench/gpu_check.py [--out bench/results/gpu_check.json]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.stack import Stack, wait_for  # noqa: E402

MODELS = [
    {"pipeline": "text-to-image", "model_id": "tiny/sd", "warm": True, "default": True},
    {"pipeline": "text-to-image", "model_id": "tiny/sd-img2img", "warm": False},
]
BODY = {"prompt": "gpu check", "width": 512, "height": 512, "num_inference_steps": 30}


def gpu_processes() -> dict[int, int]:
    """pid -> MiB used on the GPU, as nvidia-smi sees them."""
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True)
    rows = [line.split(",") for line in out.stdout.splitlines() if line.strip()]
    return {int(pid): int(mib) for pid, mib in rows}


def submit(gateway, key, model_id):
    response = requests.post(f"{gateway}/text-to-image", json={**BODY, "model_id": model_id},
                             headers={"Authorization": f"Bearer {key}",
                                      "Prefer": "respond-async"}, timeout=30)
    response.raise_for_status()
    return response.json()["id"]


def job(gateway, key, job_id):
    return requests.get(f"{gateway}/jobs/{job_id}", timeout=30,
                        headers={"Authorization": f"Bearer {key}"}).json()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/gpu_check.json")
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="gpu-check-")), MODELS)
    results = {"date": datetime.now().isoformat(timespec="seconds")}
    try:
        from app.api.auth import create_key
        from app.store.db import make_sessionmaker, transaction

        with transaction(make_sessionmaker(stack.env["DATABASE_URL"])) as session:
            key = create_key(session, "gpu-check")
        stack.start_recorder()
        stack.start_controller()
        slots = [stack.start_worker(f"gpu0-slot{i}", "--dynamic", "text-to-image",
                                    "--device", "cuda") for i in range(2)]
        gateway = stack.start_gateway()

        ids = [submit(gateway, key, "tiny/sd") for _ in range(4)]
        views = [wait_for(lambda i=i: (j := job(gateway, key, i))["status"] == "succeeded"
                          and j, timeout=600) for i in ids]
        spans = sorted((v["started_at"], v["finished_at"], v["worker"]) for v in views)
        overlap = any(a[1] > b[0] and a[2] != b[2] for a, b in zip(spans, spans[1:]))
        results["two_slots_at_once"] = overlap

        cold = wait_for(lambda i=submit(gateway, key, "tiny/sd-img2img"): (
            j := job(gateway, key, i))["status"] == "succeeded" and j, timeout=600)
        held = stack.heartbeat(cold["worker"])["models"]
        results["two_models_one_slot"] = {m["model_id"] for m in held if m["ready"]} == {
            "tiny/sd", "tiny/sd-img2img"}
        results["model_bytes"] = {m["model_id"]: m["bytes"] for m in held}

        pid = slots[0].pid
        before = gpu_processes()
        slots[0].terminate()
        slots[0].wait(120)
        time.sleep(1)  # nvidia-smi's own refresh
        results["vram_mib_before_sigterm"] = before.get(pid)
        results["vram_released_after_sigterm"] = pid not in gpu_processes()
    finally:
        stack.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    checks = ("two_slots_at_once", "two_models_one_slot", "vram_released_after_sigterm")
    return 0 if all(results[c] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
