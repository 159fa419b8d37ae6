"""Thousands of clients waiting at once on one `make run`-shaped gateway (gunicorn.conf.py:
gevent, 2 worker processes): 1,000 synchronous requests and 1,000 SSE streams on queued
jobs hold their connections while /health is timed and intake is measured against bare
Flask under the same gunicorn settings. Reports /health p99 while they wait, the intake
ratio while they wait, and the gateway's memory per waiting client (the RSS of its
master and workers, before and after the clients came).

Nothing consumes the queue (a stand-in heartbeat routes to it), so every job stays
queued and every client keeps waiting. The waiting clients live on an asyncio loop of
their own thread, on the same 2 cores as the servers."""

import asyncio
import json
import os
import sys
import threading
import time
from urllib.parse import urlsplit

import requests

from bench.charts import bar_chart
from bench.jobs import wait_until
from bench.load import http_request_bytes, load
from bench.options import Options
from bench.processes import process_rss
from bench.results import Row, write_results
from bench.stack import ECHO_BODY, ECHO_ENTRY, UNLIMITED, bench_stack
from bench.stats import median, summary

NAME = "concurrency"
FOLLOWERS_PER_JOB = 10
HEALTH_BUDGET_MS = 100.0


class Waiters:
    """Clients that connect and then wait, on an event loop in a thread of its own."""

    def __init__(self, base_url: str, headers: dict):
        parts = urlsplit(base_url)
        self.host, self.port, self.netloc = parts.hostname, parts.port, parts.netloc
        self.headers = headers
        self.streaming = 0  # SSE streams that got their first event
        self.failed: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def follow(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self._spawn(self._stream(job_id))

    def wait_sync(self, count: int) -> None:
        for _ in range(count):
            self._spawn(self._sync())

    def close(self) -> None:
        def stop():
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.5, self.loop.stop)

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(10)

    def _spawn(self, coroutine) -> None:
        # The loop keeps only weak references to its tasks: hold them, or a client
        # waiting on its socket may be collected mid-wait.
        def start():
            self._tasks.add(self.loop.create_task(coroutine))

        self.loop.call_soon_threadsafe(start)

    async def _stream(self, job_id: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(http_request_bytes("GET", f"/jobs/{job_id}/events", self.netloc,
                                            self.headers))
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.failed.append(head[:200].decode(errors="replace"))
                return
            await reader.readuntil(b"\n\n")  # the job's state now: queued
            self.streaming += 1
            while await reader.read(65536):  # keepalives, until the end
                pass
        except Exception as exc:
            self.failed.append(repr(exc))
        finally:
            writer.close()

    async def _sync(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(ECHO_BODY).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        try:
            writer.write(http_request_bytes("POST", "/echo", self.netloc, headers, body))
            head = await reader.readuntil(b"\r\n\r\n")  # only when the job ends, or refused
            self.failed.append(head[:200].decode(errors="replace"))
        except Exception as exc:
            self.failed.append(repr(exc))
        finally:
            writer.close()


def threads_of(pid: int) -> int:
    """Threads of a process and its children (gunicorn's master and workers)."""
    import psutil

    proc = psutil.Process(pid)
    return sum(p.num_threads() for p in [proc] + proc.children(recursive=True))


def health_latencies(url: str, count: int) -> list[float]:
    took = []
    with requests.Session() as http:
        for _ in range(count):
            started = time.perf_counter()
            answer = http.get(f"{url}/health", timeout=30)
            took.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"/health answered {answer.status_code}: {answer.text}")
    return took


def run(opts: Options) -> dict:
    sync_clients = opts.pick(100, 1000)
    streams = opts.pick(100, 1000)
    seconds = opts.pick(2.0, 5.0)
    health_samples = opts.pick(50, 300)
    started = time.perf_counter()
    with bench_stack([ECHO_ENTRY], UNLIMITED) as s:
        s.fake_heartbeat("bench-nobody", [("echo", "echo")])
        # make run's gateway: its default synchronous wait, not the tests' short one.
        gateway = s.start_gateway(workers=2, env={"SYNC_TIMEOUT_SECONDS": "600"})
        gateway_pid = s.stack.procs[-1].pid
        bare = s.start_gunicorn("bare-flask", "bench.bare_app:create_app()", 2)
        auth = {"Authorization": f"Bearer {s.api_key()}"}
        async_headers = {**auth, "Content-Type": "application/json",
                         "Prefer": "respond-async"}
        body = json.dumps(ECHO_BODY).encode()

        def intake(url: str) -> dict:
            return load(url, "POST", "/echo", async_headers, body, 32, seconds)

        idle = {"bare": intake(bare), "gateway": intake(gateway)}
        idle_health = health_latencies(gateway, health_samples)
        with requests.Session() as http:
            followed = [http.post(f"{gateway}/echo", json=ECHO_BODY,
                                  headers=async_headers).json()["id"]
                        for _ in range(max(1, streams // FOLLOWERS_PER_JOB))]
        time.sleep(1.0)  # the last answers' buffers go before memory is read
        rss_idle, threads_idle = process_rss(gateway_pid), threads_of(gateway_pid)

        _say(f"{len(followed)} jobs to follow; waiting clients come")
        waiters = Waiters(gateway, auth)
        try:
            queued_before = s.count_jobs("queued")
            waiters.follow([followed[n % len(followed)] for n in range(streams)])
            for batch in range(0, sync_clients, 100):  # in steps, as clients come
                size = min(100, sync_clients - batch)
                waiters.wait_sync(size)
                _say(f"{batch + size} synchronous requests sent")
                wait_until(lambda: s.count_jobs("queued") >= queued_before + batch + size
                           or waiters.failed, 120, 0.2, "synchronous requests queued")
            wait_until(lambda: waiters.streaming == streams or waiters.failed, 120, 0.2,
                       "every stream's first event")
            _say(f"{waiters.streaming} streams and {sync_clients} synchronous requests wait")
            if waiters.failed:
                raise RuntimeError(f"waiting clients failed: {waiters.failed[:3]}")
            time.sleep(1.0)
            rss_waiting, threads_waiting = process_rss(gateway_pid), threads_of(gateway_pid)
            waiting_health = health_latencies(gateway, health_samples)
            busy = {"gateway": intake(gateway), "bare": intake(bare)}
            still_waiting = waiters.streaming == streams and not waiters.failed
        finally:
            waiters.close()

    waiting = sync_clients + streams
    health = {"idle": summary(idle_health), "waiting": summary(waiting_health)}
    health_ms = {k: {q: 1000 * v for q, v in h.items() if q in ("p50", "p99", "max")}
                 for k, h in health.items()}
    bare_rate = median([idle["bare"]["rate"], busy["bare"]["rate"]])
    per_client_kib = (rss_waiting - rss_idle) / waiting / 1024
    rows = [
        Row(f"/health p99 with {waiting:,} waiting (/ {HEALTH_BUDGET_MS:g} ms budget)",
            health_ms["waiting"]["p99"], HEALTH_BUDGET_MS, "ms", ("<=", 1.0)),
        Row(f"intake with {waiting:,} waiting (gateway / bare Flask)",
            busy["gateway"]["rate"], bare_rate, "req/s", (">=", 0.4)),
        Row(f"gateway RSS with {waiting:,} waiting / idle "
            f"({per_client_kib:.0f} KiB a waiting client)",
            rss_waiting / 2**20, rss_idle / 2**20, "MiB"),
    ]
    details = {"sync_clients": sync_clients, "sse_streams": streams,
               "followers_per_job": FOLLOWERS_PER_JOB, "seconds_per_intake_run": seconds,
               "gunicorn": {"worker_class": "gevent", "workers": 2},
               "health_ms": health_ms, "health_samples": health_samples,
               "intake_rate": {"idle": {k: v["rate"] for k, v in idle.items()},
                               "waiting": {k: v["rate"] for k, v in busy.items()}},
               "gateway_rss_bytes": {"idle": rss_idle, "waiting": rss_waiting},
               "memory_per_waiting_client_kib": per_client_kib,
               "gateway_threads": {"idle": threads_idle, "waiting": threads_waiting},
               "every_client_still_waiting_at_the_end": still_waiting,
               "cpus": os.cpu_count()}
    notes = [f"{sync_clients:,} synchronous requests and {streams:,} SSE streams "
             f"({FOLLOWERS_PER_JOB} on each queued job) held open while measuring; "
             f"gateway threads {threads_idle} idle, {threads_waiting} with them waiting."]

    def chart(path):
        bar_chart(path, f"{waiting:,} waiting clients on one gateway (gevent x2)",
                  [("/health p99 (ms)", [("idle", health_ms["idle"]["p99"]),
                                         (f"{waiting:,} waiting", health_ms["waiting"]["p99"])]),
                   ("intake (req/s)", [("bare Flask", bare_rate),
                                       ("gateway, idle", idle["gateway"]["rate"]),
                                       (f"gateway, {waiting:,} waiting",
                                        busy["gateway"]["rate"])]),
                   ("gateway RSS (MiB)", [("idle", rss_idle / 2**20),
                                          (f"{waiting:,} waiting", rss_waiting / 2**20)])],
                  subtitle=f"{per_client_kib:.0f} KiB a waiting client")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}


def _say(what: str) -> None:
    print(f"bench: concurrency: {what}", file=sys.stderr, flush=True)
