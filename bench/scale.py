"""4. Scale: echo throughput with 1, 2 and 4 worker slots, and what a long queue costs.

Throughput: the queue is filled through the gateway while the slots hold still (Celery's
cancel_consumer), then n of them take it (add_consumer) while the recorder holds still
(SIGSTOP); then the recorder alone writes the jobs to PostgreSQL, reading the backlog in
batches as it does whenever slots outpace it. On 2 shared cores the two would fight over
the CPU, so each is measured alone. So that all n slots start
together, the filled queue is moved aside (RENAME) until they all wait on it, then put
back at once; the workers' figure runs from then to the last job's finished_at (the
workers' clock). The ratio is against one slot, measured in the same run, turn by turn.
CPU seconds per job of workers and recorder come with it.

Queue size: with nothing consuming, the queue is filled to 1,000 jobs and then to N
(5,000 by default, scaled down to fit the time budget; 100,000 with --full): the
gateway's resident memory (gunicorn master and workers) must stay flat; Redis bytes per
queued job and PostgreSQL bytes per job are compared with the job's own JSON message."""

import time

from bench.charts import bar_chart
from bench.jobs import all_succeeded, wait_until
from bench.load import submit_many
from bench.options import Options
from bench.processes import cpu_seconds, process_rss, resume_process, stop_process
from bench.results import Row, write_results
from bench.stack import ECHO_BODY, ECHO_ENTRY, UNLIMITED, bench_stack
from bench.stats import median

NAME = "scale"
QUEUE = "echo:echo"
SLOTS = (1, 2, 4)
PG_TABLES = ("jobs", "job_events")


def run(opts: Options) -> dict:
    jobs_per_run = opts.pick(40, 200)
    rounds = opts.pick(1, 2)
    first_mark = opts.pick(300, 1000)
    queued_target = opts.pick(600, 5_000, 100_000)
    scaled_down = queued_target < 100_000
    slots = (1, 2) if opts.quick else SLOTS
    started = time.perf_counter()
    with bench_stack([ECHO_ENTRY], UNLIMITED) as s:
        ids = [f"bench-echo-{i}" for i in range(max(slots))]
        procs = [s.start_worker(w, "--models", "echo", ready=False) for w in ids]
        wait_until(lambda: all(s.stack.heartbeat(w) for w in ids) or
                   any(p.poll() is not None for p in procs), 180, 0.1, "echo workers")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("an echo worker exited at start")
        url = s.start_gateway()
        gateway = s.stack.procs[-1]
        auth = {"Authorization": f"Bearer {s.api_key()}"}
        everyone = ids
        s.pause(everyone, QUEUE)
        pg_before, jobs_before = pg_bytes(s), s.count_jobs()

        recorder = s.start_recorder()

        def throughput(n: int) -> dict:
            chosen = ids[:n]
            job_ids = submit_many(url, auth, ECHO_BODY, jobs_per_run, clients=16)["ids"]
            # The workers alone first (the recorder holds still), then the recorder alone
            # catching up: two figures that do not fight over the 2 cores.
            # Every chosen slot must be waiting on the queue when the jobs land: a slot's new
            # queue takes effect at its next BRPOP (up to a second), so the jobs are held
            # aside meanwhile, then put back at once.
            s.hold_queue(QUEUE)
            s.resume(chosen, QUEUE)
            time.sleep(1.5)
            stop_process(recorder)
            try:
                cpu0 = {w: cpu_seconds(p.pid) for w, p in zip(ids, procs)}
                t0 = time.time()
                s.release_queue(QUEUE)
                wait_until(lambda: all_succeeded(s.redis, s.stack.operator_id, job_ids),
                           600, 0.05, f"{n} workers to drain the queue")
                s.pause(chosen, QUEUE)
                worker_cpu = sum(cpu_seconds(p.pid) - cpu0[w] for w, p in zip(ids, procs))
            finally:
                resume_process(recorder)
            cpu_recorder = cpu_seconds(recorder.pid)
            r0 = time.time()
            wait_until(lambda: recorded(s, job_ids) == len(job_ids), 600, 0.02,
                       "the recorder to write every job")
            r1 = time.time()
            recorder_cpu = cpu_seconds(recorder.pid) - cpu_recorder
            spans = sorted(((r.started_at.timestamp(), r.finished_at.timestamp(), r.worker)
                            for r in s.sql("SELECT started_at, finished_at, worker FROM jobs "
                                           "WHERE id = ANY(:ids)", ids=job_ids)),
                           key=lambda x: x[1])
            return {"workers": n, "jobs": len(job_ids),
                    "rate": len(spans) / (spans[-1][1] - t0),
                    "recorder_rate": len(spans) / (r1 - r0),
                    "worker_cpu_ms_per_job": 1000 * worker_cpu / len(spans),
                    "recorder_cpu_ms_per_job": 1000 * recorder_cpu / len(spans),
                    "jobs_per_worker": _count_by(x[2] for x in spans),
                    "resume_to_first_start_s": min(x[0] for x in spans) - t0}

        warm = submit_many(url, auth, ECHO_BODY, 50, clients=8)["ids"]  # warm-up
        s.resume(everyone, QUEUE)
        wait_until(lambda: recorded(s, warm) == len(warm), 120, 0.1, "warm-up jobs")
        s.pause(everyone, QUEUE)
        runs = {n: [] for n in slots}
        for _ in range(rounds):
            for n in slots:
                runs[n].append(throughput(n))
        finished_jobs = s.count_jobs() - jobs_before
        pg_after_runs = pg_bytes(s)

        # The queue: nothing consumes from here on.
        memory = []

        def mark(queued: int) -> dict:
            time.sleep(0.5)  # let the last answers' buffers go
            entry = {"queued": queued, "queue_depth": s.queue_depth(QUEUE),
                     "gateway_rss": process_rss(gateway.pid),
                     "redis_used_memory": int(s.redis.info("memory")["used_memory"]),
                     "pg_bytes": pg_bytes(s), "jobs_rows": s.count_jobs()}
            memory.append(entry)
            return entry

        fill_rates = []
        fill = submit_many(url, auth, ECHO_BODY, first_mark, clients=32)
        fill_rates.append(fill["rate"])
        low = mark(first_mark)
        message_bytes = len(s.first_message(QUEUE) or b"")
        queued = first_mark
        step = max(first_mark, (queued_target - first_mark) // 4, 5_000 if opts.full else 0)
        while queued < queued_target:
            batch = min(step, queued_target - queued)
            fill = submit_many(url, auth, ECHO_BODY, batch, clients=32)
            fill_rates.append(fill["rate"])
            queued += batch
            mark(queued)
        high = memory[-1]

    added = high["queued"] - low["queued"]
    redis_per_job = (high["redis_used_memory"] - low["redis_used_memory"]) / added
    pg_per_queued = (high["pg_bytes"] - low["pg_bytes"]) / added
    pg_per_finished = (pg_after_runs - pg_before) / max(1, finished_jobs)
    rate = {n: median([r["rate"] for r in results]) for n, results in runs.items()}
    recorder_rate = median([r["recorder_rate"] for results in runs.values() for r in results])
    worker_cpu = median([r["worker_cpu_ms_per_job"] for r in runs[1]])
    recorder_cpu = median([r["recorder_cpu_ms_per_job"] for results in runs.values()
                           for r in results])
    most = max(rate)
    low_label = f"{low['queued']:,}"
    high_label = f"{high['queued']:,}"
    scaled = f" (scaled down from 100,000; --full)" if scaled_down else ""
    rows = [
        Row("echo throughput, 2 slots / 1 slot (workers)", rate[2], rate[1], "jobs/s",
            (">=", 1.8)),
        *([Row("echo throughput, 4 slots / 1 slot (workers)", rate[4], rate[1], "jobs/s")]
          if 4 in rate else []),
        Row("recorder jobs/s (alone) / 1 echo slot", recorder_rate, rate[1], "jobs/s"),
        # Done when one recorder keeps up with 4 slots (the quick run has 2).
        Row(f"recorder jobs/s (alone) / {most} echo slots (workers)", recorder_rate,
            rate[most], "jobs/s", (">=", 1.0) if most == 4 else None),
        Row(f"gateway RSS at {high_label} / {low_label} queued{scaled}",
            high["gateway_rss"] / 2**20, low["gateway_rss"] / 2**20, "MiB", ("<=", 1.1)),
        Row(f"intake while filling to {high_label} / to {low_label} queued", fill_rates[-1],
            fill_rates[0], "req/s"),
        Row("Redis bytes per queued job / its message", redis_per_job, message_bytes, "B"),
        Row("PostgreSQL bytes per queued job / its message", pg_per_queued, message_bytes,
            "B"),
    ]
    details = {"jobs_per_run": jobs_per_run, "rounds": rounds, "runs": runs,
               "rate": rate, "recorder_rate": recorder_rate,
               "worker_cpu_ms_per_echo_job": worker_cpu,
               "recorder_cpu_ms_per_echo_job": recorder_cpu, "memory": memory,
               "queued_target": queued_target, "scaled_down": scaled_down,
               "message_bytes": message_bytes, "redis_bytes_per_queued_job": redis_per_job,
               "pg_bytes_per_queued_job": pg_per_queued,
               "pg_bytes_per_finished_echo_job": pg_per_finished,
               "fill_rates": fill_rates, "cpu_note": "4 slots share 2 cores with the "
               "recorder, Redis and PostgreSQL: more slots than cores cannot scale here."}
    notes = [f"Queue of {queued_target:,} jobs"
             + (" (scaled down to fit the time budget: python -m bench scale --full "
                "queues 100,000)" if scaled_down else " (full size)") + ".",
             "Throughput: 4 slots on 2 cores cannot scale past the cores; the 2-slot ratio "
             "is the target."]

    def chart(path):
        groups = [(f"{n} echo slot{'s' if n > 1 else ''}", [("jobs/s", rate[n])])
                  for n in slots]
        groups.append(("recorder alone", [("jobs/s", recorder_rate)]))
        groups += [(f"gateway MiB @ {m['queued']:,}", [("gateway RSS", m["gateway_rss"] / 2**20)])
                   for m in memory]
        bar_chart(path, "Scale: echo jobs/s by worker slots; gateway memory by queue length",
                  groups, subtitle=f"{jobs_per_run} jobs per run, {rounds} round(s); queue "
                                   f"{queued_target:,}{' (scaled down)' if scaled_down else ''}")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}


def pg_bytes(s) -> int:
    """The job tables' size on disk, indexes and TOAST included."""
    return sum(s.sql(f"SELECT pg_total_relation_size('{t}')")[0][0] for t in PG_TABLES)


def recorded(s, job_ids: list[str]) -> int:
    return s.sql("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND status = 'succeeded'",
                 ids=job_ids)[0][0]


def _count_by(values) -> dict:
    counts = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts

