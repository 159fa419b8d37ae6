"""Soak: a mixed load with faults for N minutes (not part of `make test` or `make bench`).

Echo and tiny text-to-image jobs are submitted at a steady rate while, every minute, one
worker is SIGKILLed and replaced and every broker connection is cut. Each minute records
jobs finished, RSS and open files of every process, and Redis and PostgreSQL client
counts; at the end every accepted job must be final exactly once.

    python -m bench.soak --minutes 10
"""

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text

from bench.stack import ECHO_ENTRY, SD_ENTRY
from devstack.stack import Stack, wait_for

WORKERS = ("soak-a", "soak-b")
RATE_PER_SECOND = 4


def make_key(stack) -> str:
    from app.api.auth import create_key
    from app.store.db import make_sessionmaker, transaction

    with transaction(make_sessionmaker(stack.env["DATABASE_URL"])) as session:
        return create_key(session, "soak")


def submitter(gateway, key, accepted: list, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}", "Prefer": "respond-async"}
    http = requests.Session()
    n = 0
    while not stop.wait(1 / RATE_PER_SECOND):
        n += 1
        path, body = (("text-to-image", {"prompt": "soak", "width": 64, "height": 64,
                                         "num_inference_steps": 2}) if n % 4 == 0 else
                      ("echo", {"prompt": "soak", "steps": 3, "step_seconds": 0.05}))
        response = http.post(f"{gateway}/{path}", json=body, headers=headers, timeout=30)
        if response.status_code == 202:
            accepted.append(response.json()["id"])


def sample(stack, engine) -> dict:
    processes = {}
    for proc in stack.procs:
        if proc.poll() is None:
            p = psutil.Process(proc.pid)
            family = [p, *p.children(recursive=True)]
            processes[" ".join(p.cmdline()[2:5])] = {
                "rss_mib": round(sum(x.memory_info().rss for x in family) / 2**20, 1),
                "open_files": sum(x.num_fds() for x in family)}
    with engine.connect() as conn:
        pg_clients = conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar()
    with engine.connect() as conn:
        done = conn.execute(text("SELECT count(*) FROM jobs WHERE status IN "
                                 "('succeeded','failed','canceled','aborted')")).scalar()
    return {"at": time.time(), "finished": done, "processes": processes,
            "redis_clients": stack.redis.info("clients")["connected_clients"],
            "pg_clients": pg_clients}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--out", default="bench/results/soak.json")
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="soak-")), [ECHO_ENTRY, {**SD_ENTRY,
                                                                      "warm": True}])
    stop = threading.Event()
    samples, accepted = [], []
    try:
        workers = {name: stack.start_worker(name, "--models", "echo,tiny/sd")
                   for name in WORKERS}
        stack.start_recorder()
        stack.start_controller()
        gateway = stack.start_gateway()
        engine = create_engine(stack.env["DATABASE_URL"])
        thread = threading.Thread(target=submitter, args=(gateway, make_key(stack), accepted,
                                                          stop), daemon=True)
        thread.start()
        end = time.monotonic() + args.minutes * 60
        minute = 0
        while time.monotonic() < end:
            time.sleep(min(60, max(0, end - time.monotonic())))  # the soak's own clock
            samples.append(sample(stack, engine))
            minute += 1
            victim = WORKERS[minute % 2]  # a fault a minute: a worker killed and replaced
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            stack.redis.delete(f"worker:{victim}")
            workers[victim] = stack.start_worker(victim, "--models", "echo,tiny/sd")
            stack.redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        stop.set()
        thread.join()
        with engine.connect() as conn:
            wait_for(lambda: conn.execute(text(
                "SELECT count(*) FROM jobs WHERE status IN ('queued','started')")).scalar()
                == 0, timeout=300, interval=1, what="every job to end")
        with engine.connect() as conn:
            finals = conn.execute(text(
                "SELECT count(*) FROM job_events WHERE status IN "
                "('succeeded','failed','canceled','aborted')")).scalar()
            statuses = dict(conn.execute(text(
                "SELECT status, count(*) FROM jobs GROUP BY status")).all())
        engine.dispose()
    finally:
        stop.set()
        stack.close()
    per_minute = [b["finished"] - a["finished"] for a, b in zip(samples, samples[1:])]
    report = {"minutes": args.minutes, "accepted": len(accepted), "statuses": statuses,
              "final_events": finals, "finished_per_minute": per_minute, "samples": samples}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    exactly_once = finals == sum(statuses.values()) == len(accepted)
    print("every accepted job final exactly once:", exactly_once)
    return 0 if exactly_once else 1


if __name__ == "__main__":
    sys.exit(main())
