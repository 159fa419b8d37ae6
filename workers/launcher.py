"""The launcher: one worker slot process per GPU slot, each pinned to its GPU.

    python -m workers                     # CPU, or every visible GPU, one slot each
    python -m workers --gpus 0,1 --slots-per-gpu 2 --dynamic all

A slot that dies is started again; SIGTERM or Ctrl-C stops them all gracefully.
"""

import os
import signal
import subprocess
import sys
import time

from workers.settings import launcher_arguments

RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)


def visible_gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def slot_plan(gpus: str, slots_per_gpu: int, host: str) -> list[tuple[str, str | None]]:
    """(worker name, CUDA_VISIBLE_DEVICES) for each slot; names show host, GPU and slot."""
    indices = visible_gpus() if gpus == "auto" else ([] if gpus == "none" else gpus.split(","))
    if not indices:
        return [(f"{host}-cpu-slot{s}", "") for s in range(slots_per_gpu)]
    return [(f"{host}-gpu{g}-slot{s}", g) for g in indices for s in range(slots_per_gpu)]


def metrics_ports(names: list[str], base: int) -> dict[str, int]:
    """Slot i serves its metrics on base + i; no slot does when base is 0."""
    return {name: base + i if base else 0 for i, name in enumerate(names)}


def spawn(name: str, gpu: str | None, slot_args: list[str], slots_per_gpu: int,
          metrics_port: int = 0):
    # Each slot sees only its GPU, and knows how many slots share it (its memory budget).
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu or "",
               WORKER_SLOTS_PER_GPU=str(slots_per_gpu))
    return subprocess.Popen([sys.executable, "-m", "workers.slot", "--name", name,
                             "--metrics-port", str(metrics_port), *slot_args], env=env)


def main(argv=None) -> int:
    args, slot_args = launcher_arguments().parse_known_args(argv)
    plan = slot_plan(args.gpus, args.slots_per_gpu, args.host)
    ports = metrics_ports([name for name, _ in plan], args.metrics_port)
    procs = {name: spawn(name, gpu, slot_args, args.slots_per_gpu, ports[name])
             for name, gpu in plan}
    gpus = dict(plan)
    restarts = {name: 0 for name in procs}
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        if stopping:
            for proc in procs.values():
                proc.wait()
            return 0
        for name, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                continue
            # A slot that dies is restarted with backoff, and said so: never silently.
            delay = RESTART_BACKOFF_SECONDS[min(restarts[name], len(RESTART_BACKOFF_SECONDS) - 1)]
            print(f"workers: slot {name} exited with {code}; restarting in {delay}s",
                  file=sys.stderr, flush=True)
            time.sleep(delay)
            if not stopping:
                restarts[name] += 1
                procs[name] = spawn(name, gpus[name], slot_args, args.slots_per_gpu,
                                    ports[name])
        time.sleep(0.5)
