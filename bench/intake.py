"""2. Intake throughput: async submissions accepted per second by the gateway under
concurrent clients, against a Flask endpoint that does nothing (bench/bare_app.py) under
the same gunicorn settings (the Procfile's: gevent, 2 workers): the web
stack's own ceiling. Beside them, for information, two floors under the same settings:
an endpoint that pushes each body onto a Redis list, one command (the least any gateway
that keeps its jobs in Redis does), and one that sends each body as a Celery task (the
floor of a gateway on Flask and Celery's client); bench/bare_app.py has both.

Nothing consumes the queue while we measure (a stand-in heartbeat makes the gateway route
to it), so the figure is the gateway's alone: key check, validation, routing, the job row
in PostgreSQL, the control record and the message in Redis. The two servers take turns,
round by round, and the median round counts. The client is a lean asyncio HTTP/1.1 client
with keep-alive connections (bench.load.load), on the same 2 cores."""

import json
import time

from bench.charts import bar_chart
from bench.load import load
from bench.options import Options
from bench.results import Row, write_results
from bench.stack import ECHO_BODY, ECHO_ENTRY, UNLIMITED, bench_stack
from bench.stats import median

NAME = "intake"


def run(opts: Options) -> dict:
    clients = 32
    seconds = opts.pick(2.0, 5.0)
    rounds = opts.pick(1, 3)
    started = time.perf_counter()
    with bench_stack([ECHO_ENTRY], UNLIMITED) as s:
        s.fake_heartbeat("bench-nobody", [("echo", "echo")])
        gateway = s.start_gateway(workers=2)
        bare = s.start_gunicorn("bare-flask", "bench.bare_app:create_app()", 2)
        one_push = s.start_gunicorn("flask-redis", "bench.bare_app:create_redis_app()", 2)
        floor = s.start_gunicorn("flask-celery", "bench.bare_app:create_celery_app()", 2)
        key = s.api_key()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Prefer": "respond-async"}
        body = json.dumps(ECHO_BODY).encode()
        servers = {"bare": bare, "push": one_push, "floor": floor, "gateway": gateway}
        runs = {name: [] for name in servers}
        for _ in range(rounds):
            for name, url in servers.items():
                runs[name].append(load(url, "POST", "/echo", headers, body, clients, seconds))
        queued = s.queue_depth("echo:echo")
        rows_in_db = s.count_jobs()

    for name, results in runs.items():
        bad = [r for r in results if set(r["status"]) - {202}]
        if bad:
            raise RuntimeError(f"{name}: answers other than 202: {bad[0]['status']} "
                               f"{bad[0]['errors']}")
    rate = {name: median([r["rate"] for r in results]) for name, results in runs.items()}
    p50 = {name: median([1000 * r["latency"]["p50"] for r in results])
           for name, results in runs.items()}
    p99 = {name: median([1000 * r["latency"]["p99"] for r in results])
           for name, results in runs.items()}
    rows = [
        Row(f"intake accepted/s, {clients} clients (gateway / bare Flask)", rate["gateway"],
            rate["bare"], "req/s", (">=", 0.5)),
        Row("intake accepted/s, bare Flask + one Redis LPUSH (floor / bare Flask)",
            rate["push"], rate["bare"], "req/s"),
        Row("intake accepted/s, bare Flask + Celery send_task (floor / bare Flask)",
            rate["floor"], rate["bare"], "req/s"),
        Row("intake accepted/s (gateway / bare Flask + Celery send_task)", rate["gateway"],
            rate["floor"], "req/s"),
        Row("intake latency p50 under load (gateway / bare Flask)", p50["gateway"],
            p50["bare"], "ms"),
    ]
    details = {"clients": clients, "seconds_per_round": seconds, "rounds": rounds,
               "gunicorn": {"worker_class": "gevent", "workers": 2},
               "rate": rate, "latency_p50_ms": p50, "latency_p99_ms": p99, "runs": runs,
               "jobs_queued_at_end": queued, "job_rows_at_end": rows_in_db}
    notes = ["Queue not consumed while measuring (a stand-in heartbeat routes to it); "
             "client and servers share the same CPUs.",
             "The floors do nothing else: no key, validation, row or limits. Bare Flask + "
             "one Redis LPUSH: the body pushed onto a list; bare Flask + Celery send_task: "
             "the body sent as a Celery task (JSON, no result asked for)."]
    series = (("bare", "bare Flask (ceiling)"), ("push", "bare Flask + one Redis LPUSH"),
              ("floor", "bare Flask + Celery send_task"), ("gateway", "gateway POST /echo"))

    def chart(path):
        bar_chart(path, "Intake: async submissions accepted per second (higher is better)",
                  [(title, [(label, figure[name]) for name, label in series])
                   for title, figure in (("accepted/s", rate), ("latency p50 (ms)", p50),
                                         ("latency p99 (ms)", p99))],
                  subtitle=f"{clients} keep-alive clients, {rounds} x {seconds:g}s rounds "
                           f"each, gunicorn gevent x2")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}
