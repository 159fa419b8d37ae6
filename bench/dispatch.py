"""1. Dispatch overhead: one echo job at a time (low load) through the gateway, against bare
Celery on the same Redis.

Gateway: POST /echo with Prefer: respond-async, then the job's server-sent events until
the final one (the headline), or polling GET /jobs/<id> every 10 ms, or a synchronous
POST. Bare: `send_task(...).get()` of a task that returns its input (bench/raw_celery.py).
Submit-to-start is the worker's start time (job started_at; the task's own clock for bare
Celery) minus the client's submit time; submit-to-done is when the client holds the
outcome. Beside them, for information, the floor of any gateway on Flask and Celery: a
synchronous POST to a Flask endpoint that only sends the body as a Celery task and
answers with its result (bench/bare_app.py's create_celery_app, the same gunicorn
settings, the bare task's worker). The paths take turns, sample by sample, so noise from
the shared machine falls on all of them alike."""

import time

import requests

from bench.charts import bar_chart
from bench.jobs import follow_poll, follow_sse, submit_async, unix
from bench.options import Options
from bench.results import Row, write_results
from bench.stack import ECHO_BODY, ECHO_ENTRY, bench_stack
from bench.stats import median, summary

NAME = "dispatch"
POLL_INTERVAL = 0.01
PATHS = ("raw", "floor", "sse", "poll", "sync")
LABELS = {"raw": "bare Celery", "floor": "bare Flask + Celery sync POST",
          "sse": "gateway async + SSE",
          "poll": "gateway async + poll 10 ms", "sync": "gateway sync POST"}


def run(opts: Options) -> dict:
    samples = opts.pick(15, 120)
    warmup = opts.pick(3, 10)
    started = time.perf_counter()
    with bench_stack([ECHO_ENTRY]) as s:
        s.start_worker("bench-echo", "--models", "echo")
        s.start_recorder()
        s.stack.start_controller()
        url = s.start_gateway()
        s.spawn("raw-celery", ["-m", "bench.raw_celery"])
        floor_url = s.start_gunicorn("flask-celery", "bench.bare_app:create_celery_app()", 2)
        auth = {"Authorization": f"Bearer {s.api_key()}"}

        from bench.raw_celery import QUEUE, TASK, make_app

        raw_app = make_app(s.env["REDIS_URL"])
        with requests.Session() as http:
            def raw():
                t0 = time.time()
                out = raw_app.send_task(TASK, args=[ECHO_BODY], queue=QUEUE).get(timeout=60)
                return {"start": out["started"] - t0, "done": time.time() - t0}

            def gateway(follow):
                t0 = time.time()
                job_id = submit_async(http, url, auth, "/echo", ECHO_BODY)
                accepted = time.time()
                view = follow(http, url, auth, job_id)
                done = time.time()
                if view["status"] != "succeeded":
                    raise RuntimeError(f"echo job {job_id} {view['status']}: {view['error']}")
                created, start, finish = (unix(view[k]) for k in
                                          ("created_at", "started_at", "finished_at"))
                return {"start": start - t0, "done": done - t0,
                        # where the time goes, for the SSE path
                        "stages": {"post→row created": created - t0,
                                   "row created→202 received": accepted - created,
                                   "202→worker started": start - accepted,
                                   "worker run": finish - start,
                                   "worker finished→client has final": done - finish}}

            def sync(endpoint, headers):
                t0 = time.time()
                response = http.post(endpoint, json=ECHO_BODY, headers=headers, timeout=60)
                response.raise_for_status()
                return {"done": time.time() - t0}

            measure = {"raw": raw,
                       "floor": lambda: sync(f"{floor_url}/echo?wait=1", {}),
                       "sse": lambda: gateway(follow_sse),
                       "poll": lambda: gateway(lambda *a: follow_poll(*a, POLL_INTERVAL)),
                       "sync": lambda: sync(f"{url}/echo", auth)}
            for _ in range(warmup):  # connections, imports, gunicorn workers' first hits
                for path in PATHS:
                    measure[path]()
            results = {path: [] for path in PATHS}
            for _ in range(samples):
                for path in PATHS:
                    results[path].append(measure[path]())

    def stat(path, key):
        return summary([1000 * r[key] for r in results[path] if key in r])

    stats = {path: {"submit_to_start_ms": stat(path, "start"),
                    "submit_to_done_ms": stat(path, "done")} for path in PATHS}
    stages = {name: median([1000 * r["stages"][name] for r in results["sse"]])
              for name in results["sse"][0]["stages"]}
    raw_done, sse_done = stats["raw"]["submit_to_done_ms"], stats["sse"]["submit_to_done_ms"]
    raw_start, sse_start = (stats["raw"]["submit_to_start_ms"],
                            stats["sse"]["submit_to_start_ms"])
    poll_done, sync_done = stats["poll"]["submit_to_done_ms"], stats["sync"]["submit_to_done_ms"]
    floor_done = stats["floor"]["submit_to_done_ms"]
    rows = [
        Row("dispatch submit→done p50 (async+SSE / Celery)", sse_done["p50"], raw_done["p50"],
            "ms", ("<=", 1.3)),
        Row("dispatch submit→done p99 (async+SSE / Celery)", sse_done["p99"], raw_done["p99"],
            "ms", ("<=", 2.0)),
        Row("dispatch submit→start p50 (async / Celery)", sse_start["p50"], raw_start["p50"],
            "ms"),
        Row("dispatch submit→done p50 (async+poll / Celery)", poll_done["p50"],
            raw_done["p50"], "ms"),
        Row("dispatch submit→done p50 (sync POST / Celery)", sync_done["p50"],
            raw_done["p50"], "ms"),
        Row("dispatch submit→done p50, bare Flask + Celery sync POST (floor / Celery)",
            floor_done["p50"], raw_done["p50"], "ms"),
        Row("dispatch submit→done p50 (sync POST / bare Flask + Celery sync POST)",
            sync_done["p50"], floor_done["p50"], "ms"),
    ]
    details = {"samples": samples, "warmup": warmup, "poll_interval_s": POLL_INTERVAL,
               "paths": LABELS, "latency": stats, "sse_stages_p50_ms": stages}
    notes = ["Low load: one job in flight at a time; the paths take turns sample by sample.",
             "Bare Celery: default settings but JSON, solo pool, result via .get() on the "
             "Redis backend; gateway: gunicorn gevent x2, one echo worker slot, recorder "
             "and controller running.",
             "Bare Flask + Celery sync POST: the same gunicorn settings, an endpoint that "
             "sends the body to bare Celery's worker and answers with .get(): the floor "
             "of any gateway on Flask and Celery, which adds an HTTP hop to bare Celery."]

    def chart(path):
        groups = []
        for key, label in (("submit_to_start_ms", "submit→start"),
                           ("submit_to_done_ms", "submit→done")):
            for q in ("p50", "p99"):
                groups.append((f"{label} {q}",
                               [(LABELS[p], stats[p][key].get(q)) for p in PATHS
                                if stats[p][key].get("n")]))
        bar_chart(path, "Dispatch: one echo job at a time, latency (ms, lower is better)",
                  groups, "ms", subtitle=f"{samples} samples per path; same Redis, same run")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}
