"""Each attack an operator could try on the network, made as an operator's Redis user
made by the CLI, against the real stack: each fails, and honest workers keep running."""

import subprocess
import sys
import time

import pytest
import redis

from devstack.servers import python_env
from support import Operator, cli_operator, submit_echo, wait_for, wait_status
from tasks import control, envelope, names
from tasks.messages import JobMessage, Output, WorkerEvent
from tasks.names import worker_key

SLOW = {"steps": 40, "step_seconds": 0.1}  # 4 s unless stopped


def refusals(stack, operator_id: int) -> dict[str, int]:
    raw = stack.redis.hgetall(names.OPERATOR_REFUSALS)
    return {k.decode().split(":", 1)[1]: int(v) for k, v in raw.items()
            if k.decode().startswith(f"{operator_id}:")}


def refused(stack, operator_id: int, reason: str, before: dict) -> bool:
    return refusals(stack, operator_id).get(reason, 0) > before.get(reason, 0)


def denied(call) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def subscribe(client, channel: str) -> None:
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1)


def running_job(http, gateway, auth, stack, worker: str) -> str:
    """A job an honest worker is running now (its heartbeat names it, it progressed)."""
    job_id = submit_echo(http, gateway, auth, **SLOW)
    wait_for(lambda: (stack.heartbeat(worker) or {}).get("busy") == job_id
             and control.read(stack.redis, job_id).state == "started",
             timeout=60, what=f"{worker} to run {job_id}")
    return job_id


def test_the_operators_user_may_not_touch_what_is_not_its_own(stack, mallory, honest):
    r = mallory.redis
    commands = {
        "CONFIG": lambda: r.config_get("*"),
        "FLUSHALL": lambda: r.flushall(),
        "ACL": lambda: r.execute_command("ACL", "LIST"),
        "KEYS": lambda: r.keys("*"),
        "SCAN": lambda: r.scan(0),
        "SELECT": lambda: r.execute_command("SELECT", 1),
        "read the running jobs": lambda: r.hgetall(names.RUNNING_JOBS),
        "write a control record": lambda: r.hset(names.job_control_key("x"), "state", "canceled"),
        "write a job's progress": lambda: r.hset(names.job_progress_key("x"), "step", 1),
        "publish a job's events": lambda: r.publish(names.job_channel("x"), "{}"),
        "follow a job's events": lambda: subscribe(r, names.job_channel("x")),
        "write another operator's stream": lambda: r.xadd(names.operator_events(honest.id),
                                                         {"x": "1"}),
        "read another operator's stream": lambda: r.xrange(names.operator_events(honest.id)),
        "read its own stream": lambda: r.xrange(names.operator_events(mallory.id)),
        "beat another operator's heartbeat": lambda: r.set(worker_key(honest.id, "w"), "{}"),
        "write the gateway's queue": lambda: r.lpush(names.GATEWAY_QUEUE, "{}"),
        "write kombu's bindings": lambda: r.sadd("_kombu.binding.x", "y"),
        "broadcast remote control": lambda: r.publish("/0.celery.pidbox", "{}"),
        "read the gateway's keys": lambda: r.get(names.PLACEMENT_LOG),
        "read another's payments": lambda: r.llen(names.payments_queue(
            "0x" + "11" * 20)),
    }
    allowed = [name for name, call in commands.items() if not denied(call)]
    assert allowed == []
    # ... while what a worker needs works: its own stream and heartbeat, job queues.
    mallory.redis.set(worker_key(mallory.id, "probe"), "{}", ex=5)
    assert mallory.redis.llen("echo:echo") >= 0


@pytest.mark.fault
def test_a_forged_outcome_for_another_operators_running_job_is_refused(
        http, gateway, auth, stack, mallory, echo_worker):
    echo_worker("sec-honest")
    job_id = running_job(http, gateway, auth, stack, "sec-honest")
    before = refusals(stack, mallory.id)
    fake = Output.from_bytes(b'{"forged": true}', "application/json", 1)
    mallory.events.job_event(WorkerEvent(job_id=job_id, status="succeeded", at=time.time(),
                                         worker="sec-honest", boot="stolen", attempt=1,
                                         outputs=[fake]))
    wait_for(lambda: refused(stack, mallory.id, "not_claimant", before), timeout=30,
             what="the forgery refused")
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["worker"] == "sec-honest"
    result = http.get(done["result"]["images"][0]["url"]).json()
    assert "forged" not in result


@pytest.mark.fault
def test_replayed_or_unsigned_messages_are_refused(http, gateway, auth, stack, mallory, honest,
                                                   echo_worker):
    """Mallory has a genuine message of the honest operator (signed with its key), or
    signs one with a key it made up: put in its own stream, neither is believed."""
    echo_worker("sec-replay")
    job_id = running_job(http, gateway, auth, stack, "sec-replay")
    before = refusals(stack, mallory.id)
    genuine = envelope.Envelope(honest.id, envelope.JOB, WorkerEvent(
        job_id=job_id, status="failed", at=time.time(), worker="sec-replay", boot="x",
        error="replayed").model_dump_json().encode())
    key = bytes.fromhex(honest.env["OPERATOR_TOKEN"])
    mallory.redis.xadd(names.operator_events(mallory.id), genuine.fields(key))
    made_up = envelope.Envelope(mallory.id, envelope.JOB, genuine.body)
    mallory.redis.xadd(names.operator_events(mallory.id), made_up.fields(b"k" * 32))
    mallory.redis.xadd(names.operator_events(mallory.id), {"body": genuine.body})
    wait_for(lambda: refusals(stack, mallory.id).get("wrong_stream", 0)
             + refusals(stack, mallory.id).get("unauthenticated", 0)
             >= sum(before.get(r, 0) for r in ("wrong_stream", "unauthenticated")) + 3,
             timeout=30, what="three refusals")
    assert wait_status(http, gateway, auth, job_id, ("succeeded", "failed"))["status"] == \
        "succeeded"


def test_a_forged_settle_or_unknown_message_is_refused(stack, mallory):
    before = refusals(stack, mallory.id)
    mallory.events.send("job", b'{"job_id": "x", "status": "settle"}')
    mallory.redis.xadd(names.operator_events(mallory.id), {"operator": str(mallory.id),
                                                           "kind": "settle", "body": b"{}",
                                                           "mac": b"00"})
    wait_for(lambda: refused(stack, mallory.id, "malformed", before)
             and refused(stack, mallory.id, "unauthenticated", before),
             timeout=30, what="both refused")


def test_a_model_outside_the_catalog_is_never_loaded(http, gateway, auth, stack, echo_worker):
    """A job message naming a model no catalog lists (an operator may push messages
    into the job queues it serves): the honest loader drops it and loads nothing."""
    echo_worker("sec-loader", "--models", "", "--dynamic", "text-to-image")
    from tasks.celery_app import make_celery

    forged = JobMessage(job_id="00000000-0000-0000-0000-00000000beef", pipeline="text-to-image",
                        model_id="evil/model", queue="text-to-image:*",
                        params={"prompt": "x", "seed": 1})
    # The gateway side publishes it (as a copy Mallory saw would be); the worker decides.
    control.init(stack.redis, forged.job_id, None, 60, time.time())
    make_celery(stack.env["REDIS_URL"]).send_task(names.RUN_JOB, args=[forged.model_dump()],
                                                  queue=forged.queue)
    wait_for(lambda: "not in the catalog" in stack.log("sec-loader"), timeout=60,
             what="the worker to refuse the model")
    beat = stack.heartbeat("sec-loader")
    assert all(m["model_id"] != "evil/model" for m in beat["models"])


@pytest.mark.fault
def test_a_revoked_operators_worker_is_cut_off_and_its_job_finished_by_another(
        http, gateway, auth, stack, echo_worker):
    env = cli_operator(stack, "revokee")
    operator_id = int(env["OPERATOR_ID"])
    victim = stack.start_worker("sec-revokee", "--models", "echo", env=env)
    try:
        job_id = submit_echo(http, gateway, auth, **SLOW)
        wait_for(lambda: (found := control.read(stack.redis, job_id)).state == "started"
                 and found.claimant.operator_id == operator_id,
                 timeout=60, what="the revokee to claim the job")
        revoked = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "operators",
                                  "revoke", str(operator_id)], env=python_env(stack.env),
                                 capture_output=True, text=True, timeout=120)
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(redis.exceptions.AuthenticationError):
            Operator(env).redis.ping()
        echo_worker("sec-after-revoke")
        done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
        assert done["status"] == "succeeded" and done["worker"] == "sec-after-revoke"
        assert done["attempts"] == 2
    finally:
        victim.kill()
        victim.wait()
