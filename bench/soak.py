"""Chaos soak: a mixed load for N minutes while a random single fault strikes every
FAULT_EVERY seconds (not part of `make test` or `make bench`).

The faults are the ones the README promises to survive, each on the production path:
  - slot_killed_restarted: SIGKILL of a slot run by the launcher (`python -m workers`),
    which restarts it under the same name at once;
  - slot_killed_for_a_while: SIGKILL of a plain slot, started again under its name only
    after its heartbeat expired;
  - redis_killed: SIGKILL of redis-server, back (same port, AOF) after longer than a
    heartbeat lives;
  - postgres_down: PostgreSQL stopped for 10 s, then started again;
  - media_unwritable: the media folder replaced by a file (every write fails) for 10 s;
  - recorder_killed: SIGKILL of the recorder, a new one started a moment later;
  - connections_cut: every client connection to Redis killed, waiting clients' too.
Echo jobs (some slow, some failing) and tiny text-to-image jobs are submitted throughout,
and some are canceled. At the end every job must reach one final state, recorded once,
with its control record agreeing, and no result file orphaned (devstack/invariants.py);
no accepted job may be missing. The report goes to bench/results/soak.json.

    python -m bench.soak --minutes 10 [--seed 1]
"""

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import requests

from bench.stack import ECHO_ENTRY, SD_ENTRY, UNLIMITED
from devstack import invariants
from devstack.stack import TIME_SCALE, Stack, wait_for

FAULT_EVERY = 30.0  # seconds between two faults
OUTAGE = 3 * 5 * TIME_SCALE + 2  # longer than a heartbeat lives (3 beats of 5 s, scaled)
LONG_OUTAGE = 10.0  # PostgreSQL down, the media folder unwritable
RATE_PER_SECOND = 4
LAUNCHED_SLOT = "soak-cpu-slot0"  # the launcher's one CPU slot (--host soak)
PLAIN_SLOT = "soak-plain"
MODELS = "echo,tiny/sd"


class Soak:
    def __init__(self, stack: Stack, rng: random.Random):
        self.stack, self.rng = stack, rng
        self.launcher = stack.spawn("launcher", ["-m", "workers", "--gpus", "none",
                                                 "--host", "soak", "--models", MODELS],
                                    stack.operator_env)
        self.plain = stack.start_worker(PLAIN_SLOT, "--models", MODELS)
        wait_for(lambda: stack.heartbeat(LAUNCHED_SLOT), timeout=180, what="the launched slot")
        self.recorder = stack.start_recorder()
        stack.start_controller()
        stack.start_webhooks()
        self.gateway = stack.start_gateway()
        self.faults: list[dict] = []

    # -- the faults ---------------------------------------------------------------------

    def slot_killed_restarted(self) -> None:
        beat = wait_for(lambda: self.stack.heartbeat(LAUNCHED_SLOT), timeout=120,
                        what="the launched slot's heartbeat")
        os.kill(beat["pid"], signal.SIGKILL)

    def slot_killed_for_a_while(self) -> None:
        self.plain.kill()
        self.plain.wait()
        self.outage()
        self.plain = self.stack.start_worker(PLAIN_SLOT, "--models", MODELS, ready=False)

    def redis_killed(self) -> None:
        self.stack.redis_server.kill()
        self.outage()
        self.stack.redis_server.start()

    def postgres_down(self) -> None:
        self.stack.postgres.stop()
        self.outage(LONG_OUTAGE / OUTAGE)
        self.stack.postgres.start()

    def media_unwritable(self) -> None:
        media = self.stack.env["MEDIA_DIR"]
        os.rename(media, f"{media}.aside")
        open(media, "w").close()  # a file where the folder was: every write fails
        try:
            self.outage(LONG_OUTAGE / OUTAGE)
        finally:
            os.remove(media)
            os.rename(f"{media}.aside", media)

    def recorder_killed(self) -> None:
        self.recorder.kill()
        self.recorder.wait()
        self.outage(0.3)
        self.recorder = self.stack.start_recorder()

    def connections_cut(self) -> None:
        for kind in ("normal", "pubsub"):
            self.stack.redis.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")

    FAULTS = ("slot_killed_restarted", "slot_killed_for_a_while", "redis_killed",
              "postgres_down", "media_unwritable", "recorder_killed", "connections_cut")

    def outage(self, share: float = 1.0) -> None:
        time.sleep(OUTAGE * share)  # the fault's own length, on the soak's clock

    def strike(self, name: str) -> None:
        at = time.time()
        getattr(self, name)()
        self.faults.append({"fault": name, "at": round(at, 1),
                            "seconds": round(time.time() - at, 1)})

    def schedule(self, count: int) -> list[str]:
        """Each fault as often as the others, in a random order."""
        order: list[str] = []
        while len(order) < count:
            round_ = list(self.FAULTS)
            self.rng.shuffle(round_)
            order += round_
        return order[:count]


class Load:
    """Clients: a steady mix of jobs, some canceled; what each submission got."""

    def __init__(self, gateway: str, key: str, rng: random.Random):
        self.gateway, self.rng = gateway, rng
        self.headers = {"Authorization": f"Bearer {key}", "Prefer": "respond-async"}
        self.accepted: list[str] = []
        self.answers: Counter = Counter()
        self.stop = threading.Event()

    def body(self, n: int) -> tuple[str, dict]:
        if n % 5 == 0:
            return "text-to-image", {"prompt": "soak", "width": 64, "height": 64,
                                     "num_inference_steps": 2}
        if n % 11 == 0:
            return "echo", {"prompt": "soak", "fail": "error"}
        return "echo", {"prompt": "soak", "steps": self.rng.choice((1, 5, 40)),
                        "step_seconds": 0.05}

    def run(self) -> None:
        http = requests.Session()
        n = 0
        while not self.stop.wait(1 / RATE_PER_SECOND):
            n += 1
            path, body = self.body(n)
            try:
                response = http.post(f"{self.gateway}/{path}", json=body,
                                     headers=self.headers, timeout=30)
            except requests.RequestException as exc:
                self.answers[type(exc).__name__] += 1
                continue
            self.answers[response.status_code] += 1
            if response.status_code == 202:
                job_id = response.json()["id"]
                self.accepted.append(job_id)
                if n % 13 == 0:
                    self.cancel(http, job_id)

    def cancel(self, http, job_id: str) -> None:
        try:
            http.post(f"{self.gateway}/jobs/{job_id}/cancel", headers=self.headers, timeout=30)
        except requests.RequestException:
            pass  # the job goes on; it must still end once


def make_key(stack) -> str:
    from app.api.auth import create_key
    from app.store.db import make_sessionmaker, transaction

    with transaction(make_sessionmaker(stack.env["DATABASE_URL"])) as session:
        return create_key(session, "soak")


def check(stack, sessions, accepted: list[str], since: datetime, started: float) -> dict:
    """The invariants over every job of the run; a violation is reported, not raised."""
    made = invariants.jobs_since(sessions, since)
    missing = sorted(set(accepted) - set(made))
    try:
        invariants.assert_jobs_final_exactly_once(sessions, stack.redis, made, timeout=600)
        invariants.assert_no_orphan_media(sessions, invariants.media_of(stack), since=started)
        violation = f"accepted jobs missing: {missing}" if missing else None
    except (AssertionError, TimeoutError) as exc:
        violation = f"{type(exc).__name__}: {exc}"
    from sqlalchemy import func, select

    from app.store.tables import Job

    with sessions() as session:
        statuses = dict(session.execute(select(Job.status, func.count()).where(
            Job.id.in_(made)).group_by(Job.status)).all())
    return {"jobs": len(made), "statuses": statuses, "violation": violation}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench/results/soak.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stack = Stack(Path(tempfile.mkdtemp(prefix="soak-")),
                  [ECHO_ENTRY, {**SD_ENTRY, "warm": True}], UNLIMITED)
    try:
        from app.store.db import make_sessionmaker

        soak = Soak(stack, rng)
        sessions = make_sessionmaker(stack.env["DATABASE_URL"])
        since, started = datetime.now(timezone.utc), time.time()
        load = Load(soak.gateway, make_key(stack), rng)
        clients = threading.Thread(target=load.run, daemon=True)
        clients.start()
        end = time.monotonic() + args.minutes * 60
        for name in soak.schedule(int(args.minutes * 60 // FAULT_EVERY)):
            time.sleep(max(0.0, min(FAULT_EVERY, end - time.monotonic())))  # soak clock
            if time.monotonic() >= end:
                break
            soak.strike(name)
        time.sleep(max(0.0, end - time.monotonic()))
        load.stop.set()
        clients.join()
        result = check(stack, sessions, load.accepted, since, started)
    finally:
        stack.close()
    report = {"minutes": args.minutes, "seed": args.seed, "fault_every_s": FAULT_EVERY,
              "outage_s": OUTAGE, "long_outage_s": LONG_OUTAGE, "accepted": len(load.accepted),
              "answers": {str(k): v for k, v in sorted(load.answers.items(), key=str)},
              **result, "faults": soak.faults,
              "faults_by_kind": dict(Counter(f["fault"] for f in soak.faults))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "faults"}, indent=2))
    print("every job final exactly once, none lost:", result["violation"] is None)
    return 0 if result["violation"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
