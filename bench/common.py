"""What every benchmark shares: statistics, result rows, results files, PNG charts, and a
stack on loopback (devstack.stack.Stack) with the few extras benchmarks need.

Every figure is a ratio against a baseline measured in the same run on the same machine:
the machine is shared and noisy, so absolute numbers say little and ratios say a lot."""

import asyncio
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The catalog entries benchmarks use: the instant echo pipeline and the tiny Stable
# Diffusion (the same shapes as tests/support.py TEST_MODELS).
ECHO_ENTRY = {"pipeline": "echo", "model_id": "echo", "warm": False, "price_per_unit": 1,
              "pixels_per_unit": 1}
SD_ENTRY = {"pipeline": "text-to-image", "model_id": "tiny/sd", "warm": False,
            "default": True, "price_per_unit": 1000, "pixels_per_unit": 1}
ECHO_BODY = {"prompt": "hi", "steps": 0, "step_seconds": 0}


@dataclass
class Options:
    quick: bool = False  # tiny samples: a smoke run in under two minutes
    full: bool = False  # the full sizes where a benchmark scales down by default
    out: Path = RESULTS_DIR

    def pick(self, quick, normal, full=None):
        """A size for this run: quick, normal, or full (when given and asked for)."""
        if self.quick:
            return quick
        if self.full and full is not None:
            return full
        return normal


# -- statistics --------------------------------------------------------------------------

def percentile(values, q: float) -> float:
    """The q-th percentile (0..100), linear between the two nearest ranks."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = (len(data) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary(values) -> dict:
    data = list(values)
    if not data:
        return {"n": 0}
    return {"n": len(data), "p50": percentile(data, 50), "p90": percentile(data, 90),
            "p99": percentile(data, 99), "mean": statistics.fmean(data), "min": min(data),
            "max": max(data)}


def median(values) -> float:
    return statistics.median(values) if values else math.nan


# -- result rows -------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the table: a measured figure, its baseline from the same run, their
    ratio, and the target the ratio must meet (None: shown for information)."""

    name: str
    measured: float
    baseline: float
    unit: str
    target: tuple[str, float] | None = None  # (">=" or "<=", value)
    note: str = ""
    ratio: float = field(init=False)
    passed: bool | None = field(init=False)

    def __post_init__(self):
        self.ratio = self.measured / self.baseline if self.baseline else math.nan
        if self.target is None or math.isnan(self.ratio):
            self.passed = None
        elif self.target[0] == "<=":
            self.passed = self.ratio <= self.target[1]
        else:
            self.passed = self.ratio >= self.target[1]

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≤' if self.target[0] == '<=' else '≥'} {self.target[1]:g}"

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "MISS", None: "info"}[self.passed]

    def to_json(self) -> dict:
        data = asdict(self)
        data["target"] = list(self.target) if self.target else None
        return data


@dataclass
class Todo:
    """A figure that cannot be measured yet, said so in the table and the results."""

    name: str
    why: str


def fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


TABLE_HEADER = ("benchmark", "measured", "baseline", "ratio", "target", "")


def table_lines(rows) -> list[tuple[str, ...]]:
    lines = []
    for row in rows:
        if isinstance(row, Todo):
            lines.append((row.name, "TODO", "-", "-", "-", row.why))
            continue
        lines.append((row.name, fmt(row.measured, row.unit), fmt(row.baseline, row.unit),
                      f"{row.ratio:.2f}" if not math.isnan(row.ratio) else "n/a",
                      row.target_text, row.verdict + (f" ({row.note})" if row.note else "")))
    return lines


def format_table(rows) -> str:
    lines = [TABLE_HEADER, *table_lines(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_HEADER))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                             for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows) -> str:
    out = ["| " + " | ".join(TABLE_HEADER[:5]) + " | |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for line in table_lines(rows):
        out.append("| " + " | ".join(line) + " |")
    return "\n".join(out)


# -- results files -----------------------------------------------------------------------

def machine_facts() -> dict:
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for package in ("torch", "diffusers", "transformers", "celery", "kombu", "flask",
                    "gunicorn", "redis", "sqlalchemy", "psycopg"):
        try:
            from importlib.metadata import version

            facts[package] = version(package)
        except Exception:
            facts[package] = None
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f
                                       if line.startswith("model name")), None)
    except OSError:
        facts["cpu_model"] = None
    try:
        import psutil

        facts["memory_bytes"] = psutil.virtual_memory().total
    except Exception:
        pass
    return facts


def write_results(name: str, rows, details: dict, opts: Options, notes=(),
                  seconds: float | None = None, chart=None) -> Path:
    """bench/results/<name>.json, and <name>.png drawn by chart(path) when given."""
    opts.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": machine_facts(),
        "options": {"quick": opts.quick, "full": opts.full},
        "seconds": round(seconds, 2) if seconds is not None else None,
        "rows": [r.to_json() if isinstance(r, Row) else {"name": r.name, "todo": r.why}
                 for r in rows],
        "notes": list(notes),
        "details": details,
    }
    path = opts.out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    if chart is not None:
        try:
            chart(opts.out / f"{name}.png")
        except Exception as exc:  # a chart never loses the numbers
            print(f"bench: could not draw {name}.png: {exc}", file=sys.stderr)
    return path


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON: {type(value).__name__}")


# -- PNG charts with Pillow (matplotlib is not a dependency) -----------------------------

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2"]
PASS_COLOUR, MISS_COLOUR, INFO_COLOUR = "#54A24B", "#E45756", "#9D9D9D"


_GLYPHS = {"→": "->", "≤": "<=", "≥": ">=", "×": "x", "…": "..."}


def _plain(text: str) -> str:
    """Pillow's default font has no arrows or inequality signs."""
    for glyph, plain in _GLYPHS.items():
        text = text.replace(glyph, plain)
    return text


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # an older Pillow: one bitmap size
        return ImageFont.load_default()


def bar_chart(path: Path, title: str, groups: list[tuple[str, list[tuple[str, float]]]],
              unit: str = "", subtitle: str = "") -> None:
    """Horizontal grouped bars: one group per label, one bar per (series, value), each
    labelled with its value. Series keep their colour across groups."""
    from PIL import Image, ImageDraw

    series = []
    for _, bars in groups:
        for name, _ in bars:
            if name not in series:
                series.append(name)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    values = [v for _, bars in groups for _, v in bars if v is not None and not math.isnan(v)]
    top = max(values) if values else 1.0
    font, small, big = _font(15), _font(13), _font(20)
    bar_h, gap, label_w, width = 20, 14, 300, 1100
    plot_w = width - label_w - 140
    height = 90 + sum(len(bars) * bar_h + gap for _, bars in groups) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 12), _plain(title), fill="black", font=big)
    if subtitle:
        draw.text((16, 40), _plain(subtitle), fill="#555555", font=small)
    x = 16
    for name in series:  # legend
        draw.rectangle((x, 64, x + 12, 76), fill=colours[name])
        draw.text((x + 18, 62), _plain(name), fill="black", font=small)
        x += 30 + int(draw.textlength(_plain(name), font=small))
    y = 90
    for label, bars in groups:
        draw.text((16, y + (len(bars) * bar_h) / 2 - 9), _plain(label), fill="black", font=font)
        for name, value in bars:
            length = 0 if not value or math.isnan(value) else int(plot_w * value / top)
            draw.rectangle((label_w, y + 2, label_w + max(length, 1), y + bar_h - 2),
                           fill=colours[name])
            draw.text((label_w + length + 6, y + 2), fmt(value, unit), fill="black", font=small)
            y += bar_h
        y += gap
    draw.line((label_w, 86, label_w, y - gap + 4), fill="#888888")
    image.save(path)


def ratio_chart(path: Path, title: str, rows, subtitle: str = "") -> None:
    """One line per row: the ratio as a bar from 1 on a log axis (0.01 to 100), the
    target as a black mark; green where it is met, red where missed, grey for rows
    shown for information."""
    from PIL import Image, ImageDraw

    rows = [r for r in rows if isinstance(r, Row) and not math.isnan(r.ratio)]
    font, small, big = _font(15), _font(13), _font(20)
    bar_h, label_w, width = 26, 560, 1480
    plot_w = width - label_w - 40
    decades = (-2, 2)  # log10 of the axis' ends

    def x(ratio: float) -> int:
        ratio = min(max(ratio, 10 ** decades[0]), 10 ** decades[1])
        return label_w + int(plot_w * (math.log10(ratio) - decades[0]) /
                             (decades[1] - decades[0]))

    height = 80 + len(rows) * bar_h + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 12), _plain(title), fill="black", font=big)
    if subtitle:
        draw.text((16, 42), _plain(subtitle), fill="#555555", font=small)
    top, y = 72, 72
    for row in rows:
        colour = {True: PASS_COLOUR, False: MISS_COLOUR, None: INFO_COLOUR}[row.passed]
        name = _plain(row.name)
        while draw.textlength(name, font=font) > label_w - 24 and len(name) > 10:
            name = name[:-2]
        if name != _plain(row.name):
            name = name.rstrip() + "..."
        draw.text((16, y + 4), name, fill="black", font=font)
        a, b = sorted((x(1.0), x(row.ratio)))
        draw.rectangle((a, y + 4, max(b, a + 1), y + bar_h - 4), fill=colour)
        text = f"{row.ratio:.2f}  ({row.target_text}, {row.verdict})"
        after = max(b, x(1.0), x(row.target[1]) + 2 if row.target else 0)
        draw.text((after + 6, y + 5), _plain(text), fill="black", font=small)
        if row.target:
            tx = x(row.target[1])
            draw.line((tx, y + 1, tx, y + bar_h - 1), fill="black", width=3)
        y += bar_h
    for power in range(decades[0], decades[1] + 1):
        tx = x(10.0 ** power)
        draw.line((tx, top - 4, tx, y + 2), fill="#888888" if power == 0 else "#DDDDDD")
        draw.text((tx - 12, y + 6), f"{10.0 ** power:g}", fill="#555555", font=small)
    draw.text((label_w, y + 26), "ratio measured / baseline (log scale); black mark: target",
              fill="#555555", font=small)
    image.save(path)


# -- the stack ---------------------------------------------------------------------------

class BenchStack:
    """devstack.stack.Stack in a temporary folder, plus what benchmarks need on top:
    an API key, a stand-in heartbeat, pausing workers, reading process memory."""

    def __init__(self, models: list[dict], env: dict | None = None):
        from devstack.stack import Stack

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.dir = Path(tempfile.mkdtemp(prefix="genai-bench-"))
        try:
            self.stack = Stack(self.dir, models, env)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.env = self.stack.env
        self.stack_models = models
        self.redis = self.stack.redis
        self._sessions = None
        self._celery = None
        self._fakes: list[str] = []

    # Stack's own
    def start_worker(self, worker_id: str, *args: str, ready: bool = True):
        return self.stack.start_worker(worker_id, *args, ready=ready)

    def start_recorder(self):
        return self.stack.start_recorder()

    def start_gateway(self, workers: int = 2, threads: int = 32, name: str = "gateway") -> str:
        """gunicorn as the Procfile runs it (gthread, 2 workers, 32 threads)."""
        url = self.stack.start_gateway(name=name, workers=workers, threads=threads)
        wait_ready(url + "/health")
        return url

    def spawn(self, name: str, args: list[str], extra_env: dict | None = None):
        return self.stack.spawn(name, args, extra_env)

    def start_gunicorn(self, name: str, app: str, workers: int = 2, threads: int = 32) -> str:
        """Any WSGI app under the gateway's gunicorn settings (for the bare baseline)."""
        from devstack.servers import free_port, wait_for_port

        port = free_port()
        proc = self.spawn(name, ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                 "--worker-class", "gthread", "--workers", str(workers),
                                 "--threads", str(threads), app])
        wait_for_port(port, timeout=60, proc=proc)
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        try:
            for worker_id in self._fakes:
                self.redis.delete(f"worker:{worker_id}")
        except Exception:
            pass
        for proc in self.stack.procs:  # a stopped process cannot hear SIGTERM
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                except OSError:
                    pass
        try:
            self.stack.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @contextmanager
    def scope(self, env: dict | None = None):
        """One benchmark on this stack: its processes (and stand-in heartbeats) are ended,
        and Redis emptied, when it ends; `env` is added to the processes it starts."""
        first_proc, first_fake = len(self.stack.procs), len(self._fakes)
        saved_env = dict(self.stack.env)
        self.stack.env.update(env or {})
        try:
            yield self
        except BaseException:
            self.dump_logs()
            raise
        finally:
            self.stack.env.clear()
            self.stack.env.update(saved_env)
            for worker_id in self._fakes[first_fake:]:
                self.redis.delete(f"worker:{worker_id}")
            del self._fakes[first_fake:]
            end_processes(self.stack.procs[first_proc:])
            del self.stack.procs[first_proc:]
            # Queued messages, control records and heartbeats of this benchmark must not
            # reach the next one's workers. Nothing of ours uses Redis now.
            self.redis.flushdb()

    def dump_logs(self, lines: int = 25) -> None:
        """The end of every process' log, on stderr: the folder goes when the stack closes."""
        for log in sorted(self.stack.logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {log.name} (last {len(tail)} lines) ---", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)

    # Keys and the database
    @property
    def sessions(self):
        if self._sessions is None:
            from app.db import make_sessionmaker

            self._sessions = make_sessionmaker(self.env["DATABASE_URL"])
        return self._sessions

    def api_key(self, name: str = "bench") -> str:
        from app.auth import create_key
        from app.db import transaction

        with transaction(self.sessions) as session:
            return create_key(session, name)

    def sql(self, query: str, **params):
        from sqlalchemy import text

        with self.sessions() as session:
            return session.execute(text(query), params).all()

    def count_jobs(self, status: str | None = None) -> int:
        if status is None:
            return self.sql("SELECT count(*) FROM jobs")[0][0]
        return self.sql("SELECT count(*) FROM jobs WHERE status = :s", s=status)[0][0]

    # Workers
    def fake_heartbeat(self, worker_id: str, models: list[tuple[str, str]]) -> None:
        """A heartbeat of a worker that holds models but consumes nothing, so that the
        gateway routes jobs to queues that fill up (intake and queue-size benchmarks)."""
        state = {"id": worker_id, "host": "bench", "pid": 0, "device": "cpu", "gpu": None,
                 "models": [{"pipeline": p, "model_id": m, "warm": True, "ready": True,
                             "load_seconds": 0, "error": None} for p, m in models],
                 "dynamic": [], "busy": None, "version": "bench", "at": time.time(),
                 "interval": 3600}
        self.redis.set(f"worker:{worker_id}", json.dumps(state))  # no TTL: removed in close
        self._fakes.append(worker_id)

    def drop_fake_heartbeat(self, worker_id: str) -> None:
        self.redis.delete(f"worker:{worker_id}")

    @property
    def celery(self):
        if self._celery is None:
            from tasks.celery_app import make_celery

            self._celery = make_celery(self.env["REDIS_URL"])
        return self._celery

    def node_names(self, worker_ids: list[str], timeout: float = 30) -> dict[str, str]:
        """worker id -> Celery node name, from the workers' answers to a ping."""
        from devstack.stack import wait_for

        def found():
            replies = self.celery.control.ping(timeout=0.5) or []
            names = [name for reply in replies for name in reply]
            mapping = {w: n for w in worker_ids for n in names if n.startswith(f"{w}@")}
            return mapping if len(mapping) == len(worker_ids) else None

        return wait_for(found, timeout=timeout, interval=0.2, what=f"ping of {worker_ids}")

    def pause(self, nodes: list[str], queue: str) -> None:
        """The workers stop taking jobs from queue (Celery's cancel_consumer)."""
        replies = self.celery.control.cancel_consumer(queue, destination=nodes, reply=True,
                                                      timeout=10)
        if len(replies or []) < len(nodes):
            raise RuntimeError(f"cancel_consumer answered by {replies} of {nodes}")

    def resume(self, nodes: list[str], queue: str) -> None:
        """The workers take jobs from queue again (Celery's add_consumer)."""
        replies = self.celery.control.add_consumer(queue, destination=nodes, reply=True,
                                                   timeout=10)
        if len(replies or []) < len(nodes):
            raise RuntimeError(f"add_consumer answered by {replies} of {nodes}")

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in a Celery queue, every priority list of it together."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in priority_lists(queue):
                pipe.llen(key)
            return sum(pipe.execute())

    def hold_queue(self, queue: str) -> int:
        """Moves a queue's messages aside (RENAME, atomic): consumers see an empty queue.
        Returns how many were moved."""
        moved = 0
        for key in priority_lists(queue):
            if self.redis.exists(key):
                moved += self.redis.llen(key)
                self.redis.rename(key, f"bench:held:{key}")
        return moved

    def release_queue(self, queue: str) -> None:
        """Puts held messages back at once: every consumer blocked on the queue wakes."""
        for key in priority_lists(queue):
            if self.redis.exists(f"bench:held:{key}"):
                self.redis.rename(f"bench:held:{key}", key)

    def first_message(self, queue: str) -> bytes | None:
        for key in priority_lists(queue):
            message = self.redis.lindex(key, 0)
            if message is not None:
                return message
        return None


def wait_ready(url: str, timeout: float = 60) -> None:
    """Waits until url answers at all (gunicorn listens before its workers have booted)."""
    import requests

    def answers():
        try:
            requests.get(url, timeout=5)
            return True
        except requests.RequestException:
            return False

    wait_until(answers, timeout, 0.1, f"{url} to answer")


def priority_lists(queue: str) -> list[str]:
    """Kombu keeps a Redis queue as one list per priority step: the name, then the name,
    a separator and the step."""
    from kombu.transport.redis import PRIORITY_STEPS

    return [queue if step == PRIORITY_STEPS[0] else f"{queue}\x06\x16{step}"
            for step in PRIORITY_STEPS]


# The gateway's admission control and fair share would (rightly) refuse the long queues
# that throughput and queue-size benchmarks build on purpose; they are lifted there.
UNLIMITED = {"MAX_ACTIVE_JOBS_PER_KEY": "1000000000", "ADMISSION_MAX_WAIT_SECONDS": "1e9"}


# The catalog of every benchmark's stack: one stack can serve them all in turn.
ALL_MODELS = [ECHO_ENTRY, SD_ENTRY]
_shared: BenchStack | None = None


@contextmanager
def shared_stack():
    """One stack (PostgreSQL, Redis, the dev chain) for a whole run: each benchmark takes
    a scope of it (bench_stack), which saves starting and stopping servers five times."""
    global _shared
    _shared = BenchStack(ALL_MODELS, UNLIMITED)
    try:
        yield _shared
    finally:
        stack, _shared = _shared, None
        stack.close()


@contextmanager
def bench_stack(models: list[dict], env: dict | None = None):
    """A stack for one benchmark: a scope of the run's shared stack when there is one,
    else a stack of its own. Either way every process it started is ended when it ends,
    whatever happens."""
    if _shared is not None:
        missing = [m for m in models if m not in _shared.stack_models]
        if missing:
            raise ValueError(f"models not in the shared stack's catalog: {missing}")
        with _shared.scope(env) as stack:
            yield stack
        return
    stack = BenchStack(models, env)
    try:
        yield stack
    except BaseException:
        stack.dump_logs()
        raise
    finally:
        stack.close()


def end_processes(procs, timeout: float = 15) -> None:
    """SIGCONT (a stopped process cannot hear SIGTERM), SIGTERM, wait, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
            except OSError:
                pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except Exception:
            proc.kill()
            proc.wait(5)


def process_rss(pid: int, children: bool = True) -> int:
    """Resident memory of a process and (by default) its children, in bytes."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + (proc.children(recursive=True) if children else [])
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User and system CPU time a process (and its children) has used so far."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + (proc.children(recursive=True) if children else [])
        total = 0.0
        for p in procs:
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def stop_process(proc) -> None:
    """SIGSTOP: the process holds still (and takes no CPU) until resume_process."""
    os.kill(proc.pid, signal.SIGSTOP)


def resume_process(proc) -> None:
    os.kill(proc.pid, signal.SIGCONT)


# -- a lean HTTP load generator ----------------------------------------------------------

def http_request_bytes(method: str, url_path: str, host: str, headers: dict,
                       body: bytes = b"") -> bytes:
    lines = [f"{method} {url_path} HTTP/1.1", f"Host: {host}",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _load_client(host: str, port: int, request: bytes, stop_at: float,
                       measure_from: float, stats: dict) -> None:
    reader = writer = None
    try:
        while time.perf_counter() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            sent = time.perf_counter()
            writer.write(request)
            status, body, close = await _read_response(reader)
            done = time.perf_counter()
            if sent >= measure_from and done <= stop_at:
                stats["status"][status] = stats["status"].get(status, 0) + 1
                stats["latency"].append(done - sent)
                if len(stats["bodies"]) < 3 and status >= 400:
                    stats["bodies"].append(body[:300].decode(errors="replace"))
            if close:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def load(base_url: str, method: str, url_path: str, headers: dict, body: bytes,
         clients: int, seconds: float, warmup: float = 1.0) -> dict:
    """`clients` keep-alive connections sending the same request back to back for
    warmup + seconds; counts the answers that came within the measured window. A
    hand-written HTTP/1.1 client on asyncio, so that the client takes as little of the
    shared CPU as it can (httpx or requests would cap what a bare server shows)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    request = http_request_bytes(method, url_path, parts.netloc, headers, body)
    stats = {"status": {}, "latency": [], "bodies": []}

    async def main():
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + seconds
        await asyncio.gather(*(_load_client(parts.hostname, parts.port, request, stop_at,
                                            measure_from, stats) for _ in range(clients)))

    asyncio.run(main())
    ok = sum(n for status, n in stats["status"].items() if status < 300)
    return {"seconds": seconds, "clients": clients, "ok": ok, "rate": ok / seconds,
            "status": stats["status"], "latency": summary(stats["latency"]),
            "errors": stats["bodies"]}


def submit_many(base_url: str, headers: dict, body: dict, count: int, clients: int = 16,
                path: str = "/echo") -> dict:
    """Submits `count` async jobs as fast as `clients` connections can; returns the
    number accepted (202), their job ids, the time taken and the rate."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    payload = json.dumps(body).encode()
    request = http_request_bytes("POST", path, parts.netloc,
                                 {**headers, "Content-Type": "application/json",
                                  "Prefer": "respond-async"}, payload)
    left = [count]
    statuses: dict[int, int] = {}
    errors: list[str] = []
    ids: list[str] = []

    async def client():
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(request)
                status, answer, close = await _read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    ids.append(json.loads(answer)["id"])
                elif len(errors) < 3:
                    errors.append(answer[:300].decode(errors="replace"))
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        finally:
            writer.close()

    async def main():
        await asyncio.gather(*(client() for _ in range(min(clients, count))))

    started = time.perf_counter()
    asyncio.run(main())
    seconds = time.perf_counter() - started
    accepted = statuses.get(202, 0)
    if accepted != count:
        raise RuntimeError(f"{accepted} of {count} submissions accepted: {statuses} {errors}")
    return {"accepted": accepted, "ids": ids, "seconds": seconds, "rate": accepted / seconds}


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = ""):
    from devstack.stack import wait_for

    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


# -- following jobs ----------------------------------------------------------------------

FINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


def unix(iso: str | None) -> float | None:
    return datetime.datetime.fromisoformat(iso).timestamp() if iso else None


def follow_sse(http, base_url: str, headers: dict, job_id: str, timeout: float = 120) -> dict:
    """Reads GET /jobs/<id>/events until the final event; returns the job view it carries."""
    event = None
    with http.get(f"{base_url}/jobs/{job_id}/events", headers=headers, stream=True,
                  timeout=timeout) as response:
        response.raise_for_status()
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in FINAL:
                return json.loads(line[5:])
    raise RuntimeError(f"the events of job {job_id} ended without a final event")


def follow_poll(http, base_url: str, headers: dict, job_id: str, interval: float = 0.01,
                timeout: float = 120) -> dict:
    """Polls GET /jobs/<id> every `interval` seconds until the job is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = http.get(f"{base_url}/jobs/{job_id}", headers=headers, timeout=timeout).json()
        if view["status"] in FINAL:
            return view
        time.sleep(interval)
    raise TimeoutError(f"job {job_id} not final after {timeout}s")


def submit_async(http, base_url: str, headers: dict, path: str, body: dict) -> str:
    response = http.post(f"{base_url}{path}", json=body,
                         headers={**headers, "Prefer": "respond-async"}, timeout=60)
    if response.status_code != 202:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
    return response.json()["id"]


def ctl_states(redis, job_ids: list[str]) -> list[str | None]:
    """The workers' view of jobs: their control records' states (tasks/control.py)."""
    from tasks.control import ctl_key

    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(ctl_key(job_id), "state")
        return [v.decode() if v else None for v in pipe.execute()]
