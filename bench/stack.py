"""A stack on loopback for benchmarks (devstack.stack.Stack) with the few extras they
need: an API key, a stand-in heartbeat, pausing workers, reading process memory; and one
stack shared by a whole run."""

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.jobs import wait_until
from bench.processes import end_processes
from tasks.names import worker_key
from tasks.queues import priority_keys

# The catalog entries benchmarks use: the instant echo pipeline and the tiny Stable
# Diffusion (the same shapes as tests/support.py TEST_MODELS).
ECHO_ENTRY = {"pipeline": "echo", "model_id": "echo", "warm": False, "price_per_unit": 1,
              "pixels_per_unit": 1}
SD_ENTRY = {"pipeline": "text-to-image", "model_id": "tiny/sd", "warm": False,
            "default": True, "price_per_unit": 1000, "pixels_per_unit": 1}
ECHO_BODY = {"prompt": "hi", "steps": 0, "step_seconds": 0}
# The llm benchmark's Llama (a size where the CPU works per token; built by bench/llm.py)
# and the tiny Whisper.
LLM_ENTRY = {"pipeline": "llm", "model_id": "bench/llama-medium", "warm": False,
             "price_per_unit": 1, "pixels_per_unit": 1}
WHISPER_ENTRY = {"pipeline": "audio-to-text", "model_id": "tiny/whisper", "warm": False,
                 "price_per_unit": 1, "pixels_per_unit": 1}


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

    def start_gateway(self, workers: int = 2, name: str = "gateway",
                      env: dict | None = None) -> str:
        """gunicorn as the Procfile runs it (gunicorn.conf.py: gevent, 2 workers)."""
        url = self.stack.start_gateway(name=name, workers=workers, env=env)
        wait_ready(url + "/health")
        return url

    def spawn(self, name: str, args: list[str], extra_env: dict | None = None):
        return self.stack.spawn(name, args, extra_env)

    def start_gunicorn(self, name: str, app: str, workers: int = 2) -> str:
        """Any WSGI app under the gateway's gunicorn settings (for the bare baseline):
        its worker class and connections, without its logging and metrics set-up."""
        from devstack.servers import free_port, wait_for_port

        port = free_port()
        proc = self.spawn(name, ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                 "--worker-class", "gevent", "--workers", str(workers),
                                 "--worker-connections", "4000", app])
        wait_for_port(port, timeout=60, proc=proc)
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        try:
            for worker_id in self._fakes:
                self.redis.delete(worker_key(self.stack.operator_id, worker_id))
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
                self.redis.delete(worker_key(self.stack.operator_id, worker_id))
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
            from app.store.db import make_sessionmaker

            self._sessions = make_sessionmaker(self.env["DATABASE_URL"])
        return self._sessions

    def api_key(self, name: str = "bench") -> str:
        from app.api.auth import create_key
        from app.store.db import transaction

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
        self.redis.set(worker_key(self.stack.operator_id, worker_id), json.dumps(state))  # no TTL: removed in close
        self._fakes.append(worker_id)

    def drop_fake_heartbeat(self, worker_id: str) -> None:
        self.redis.delete(worker_key(self.stack.operator_id, worker_id))

    @property
    def celery(self):
        if self._celery is None:
            from tasks.celery_app import make_celery

            self._celery = make_celery(self.env["REDIS_URL"])
        return self._celery

    def pause(self, worker_ids: list[str], queue: str) -> None:
        """The workers stop taking jobs from queue (each told through its own queue)."""
        for worker_id in worker_ids:
            self.hold(worker_id, queue)

    def resume(self, worker_ids: list[str], queue: str) -> None:
        """The workers take jobs from queue again."""
        for worker_id in worker_ids:
            self.hold(worker_id, queue, consuming=True)

    def hold(self, worker_id: str, queue: str, consuming: bool = False) -> None:
        """A worker of the stack's operator stops (or starts again) taking jobs from
        queue, told through its own queue (remote control is off on operators' workers);
        waits until its heartbeat says so."""
        from devstack.stack import wait_for
        from tasks import names

        self.celery.send_task(names.SET_CONSUMING, args=[queue, consuming],
                              queue=names.worker_queue(self.stack.operator_id, worker_id))
        wait_for(lambda: (queue in (self.stack.heartbeat(worker_id) or {}).get("queues", []))
                 == consuming, timeout=60, interval=0.02,
                 what=f"{worker_id} to {'consume' if consuming else 'hold'} {queue}")

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in a Celery queue, every priority list of it together."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in priority_keys(queue):
                pipe.llen(key)
            return sum(pipe.execute())

    def hold_queue(self, queue: str) -> int:
        """Moves a queue's messages aside (RENAME, atomic): consumers see an empty queue.
        Returns how many were moved."""
        moved = 0
        for key in priority_keys(queue):
            if self.redis.exists(key):
                moved += self.redis.llen(key)
                self.redis.rename(key, f"bench:held:{key}")
        return moved

    def release_queue(self, queue: str) -> None:
        """Puts held messages back at once: every consumer blocked on the queue wakes."""
        for key in priority_keys(queue):
            if self.redis.exists(f"bench:held:{key}"):
                self.redis.rename(f"bench:held:{key}", key)

    def first_message(self, queue: str) -> bytes | None:
        for key in priority_keys(queue):
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


# The gateway's admission control and fair share would (rightly) refuse the long queues
# that throughput and queue-size benchmarks build on purpose; they are lifted there.
UNLIMITED = {"MAX_ACTIVE_JOBS_PER_KEY": "1000000000", "ADMISSION_MAX_WAIT_SECONDS": "1e9"}


# The catalog of every benchmark's stack: one stack can serve them all in turn.
ALL_MODELS = [ECHO_ENTRY, SD_ENTRY, LLM_ENTRY, WHISPER_ENTRY]
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
