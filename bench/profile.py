"""Where the CPU goes per echo job, in each of our three processes (cProfile):

    python -m bench.profile                 # gateway, worker and recorder, 300 jobs
    python -m bench.profile --jobs 1000 --top 30

On one loopback stack (PostgreSQL, Redis), each part runs in this process under cProfile,
on real data, one after the other, as the job flows:
  gateway   create_app() answering N async POST /echo (Flask's test client: our code,
            without gunicorn's HTTP parsing);
  worker    Runtime.run_job on the N messages the gateway queued (the slot's code,
            without Celery's own per-task work);
  recorder-one  the recorder (app/recorder.py) on half of the events the worker wrote to
            its operator's stream, two at a time: each job's start and end in a transaction
            of their own, as at low load;
  recorder  the other half, read in batches as the busy recorder reads them.
Prints the top functions by own time and by cumulative time, and writes
bench/results/profile-<part>.txt. Not part of make bench."""

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import sys
import time

from bench.options import RESULTS_DIR
from bench.stack import ECHO_BODY, ECHO_ENTRY, UNLIMITED, bench_stack


def kombu_messages(redis, queue: str):
    """Pops every message of a Celery queue on Redis: (task name, args, kwargs)."""
    from tasks.queues import priority_keys

    for key in priority_keys(queue):
        while (raw := redis.rpop(key)) is not None:
            message = json.loads(raw)
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args, kwargs, _ = json.loads(body)
            yield message["headers"]["task"], args, kwargs


def profiled(name: str, fn, top: int, out_dir) -> dict:
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    count = fn()
    profile.disable()
    seconds = time.perf_counter() - t0
    text = io.StringIO()
    print(f"== {name}: {count} items in {seconds:.2f}s ({1000 * seconds / max(count, 1):.2f} ms "
          f"per item, profiled)", file=text)
    stats = pstats.Stats(profile, stream=text).strip_dirs()
    print("-- by own time", file=text)
    stats.sort_stats("tottime").print_stats(top)
    print("-- by cumulative time", file=text)
    stats.sort_stats("cumulative").print_stats(top)
    report = text.getvalue()
    print(report)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"profile-{name}.txt").write_text(report)
    return {"items": count, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    from pathlib import Path

    out_dir = Path(args.out) if args.out else None

    with bench_stack([ECHO_ENTRY], UNLIMITED) as s:
        s.fake_heartbeat("bench-nobody", [("echo", "echo")])
        os.environ.update(s.env)
        from app import create_app
        from app.recorder import BATCH, Recorder, make_recorder_celery
        from app.settings import Settings
        from tasks import names
        from tasks.celery_app import make_celery
        from workers.runtime import Runtime
        from workers.settings import slot_settings

        app = create_app()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {s.api_key()}", "Prefer": "respond-async"}

        def submit(n):
            for _ in range(n):
                answer = client.post("/echo", json=ECHO_BODY, headers=headers)
                if answer.status_code != 202:
                    raise RuntimeError(f"{answer.status_code} {answer.get_data(as_text=True)}")
            return n

        submit(20)  # warm-up: imports, connections, caches
        profiled("gateway", lambda: submit(args.jobs), args.top, out_dir)

        gateway_settings = Settings.from_env()
        os.environ.update(s.stack.operator_env)  # the slot runs as the stack's operator
        settings = slot_settings(["--name", "bench-profile", "--models", "echo"])
        runtime = Runtime(settings, make_celery(settings.redis_url, settings.catalog))
        runtime.load_warm()
        messages = [a for task, a, _ in kombu_messages(s.redis, "echo:echo")]

        def work():
            for job_args in messages:
                runtime.run_job(*job_args)
            return len(messages)

        profiled("worker", work, args.top, out_dir)

        recorder = Recorder(gateway_settings, make_recorder_celery(gateway_settings))
        stream = names.operator_events(s.stack.operator_id)

        def record(batch: int, jobs: int | None = None):
            """Records `jobs` jobs' start and end (None: all that is left), reading up to
            `batch` messages at once."""
            def run():
                recorder.batch = batch
                before = s.redis.xlen(stream)
                left = 0 if jobs is None else before - 2 * jobs
                while s.redis.xlen(stream) > left:
                    recorder.step()
                return before - left
            return run

        profiled("recorder-one", record(2, len(messages) // 2), args.top, out_dir)
        profiled("recorder", record(BATCH), args.top, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
