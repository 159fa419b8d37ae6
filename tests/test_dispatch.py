"""A job's message, sent without Celery's send_task (tasks/dispatch.py): the same
message and task-sent event send_task sends. (Every job of the suite is sent this way,
and real Celery workers run them.)"""

import base64
import json
import time
import uuid

import pytest

from tasks import control, names
from tasks.celery_app import make_celery
from tasks.dispatch import outgoing, send_job
from tasks.messages import JobMessage
from tasks.queues import priority_keys

QUEUE = "nobody:dispatch-test"  # no worker consumes it


def a_job(priority: int) -> JobMessage:
    return JobMessage(job_id=str(uuid.uuid4()), pipeline="echo", model_id="echo",
                      queue=QUEUE, params={"prompt": "same"}, time_limit=60.0,
                      enqueued_at=time.time(), priority=priority)


def comparable(raw: bytes) -> dict:
    """kombu's envelope with its body decoded, less what differs between two sends of
    the same message: the delivery tag, and an event's time and clock."""
    message = json.loads(raw)
    message["properties"].pop("delivery_tag")
    message["body"] = json.loads(base64.b64decode(message["body"]))
    if isinstance(message["body"], dict):
        for varying in ("timestamp", "clock", "utcoffset"):
            message["body"].pop(varying)
    return message


@pytest.mark.parametrize("priority", [0, 3, 5, 9])
def test_a_job_is_sent_as_celery_sends_it(stack, priority):
    celery = make_celery(stack.env["REDIS_URL"])
    job = a_job(priority)
    events = stack.redis.pubsub()
    events.psubscribe("*.celeryev/task.sent")
    assert events.get_message(timeout=5)["type"] == "psubscribe"

    def sent(send) -> tuple:
        send()
        [key] = [k for k in priority_keys(QUEUE) if stack.redis.llen(k)]
        message = stack.redis.lpop(key)
        while (event := events.get_message(timeout=5)) is not None:
            if json.loads(base64.b64decode(json.loads(event["data"])["body"]))["uuid"] \
                    == f"{job.job_id}.1":
                return key, message, event["channel"], event["data"]
        raise AssertionError("no task-sent event")

    by_celery = sent(lambda: celery.send_task(
        names.RUN_JOB, args=[job.model_dump()], queue=QUEUE, task_id=f"{job.job_id}.1",
        priority=priority, argsrepr="[echo echo attempt 1]"))
    by_us = sent(lambda: send_job(stack.redis, outgoing(celery, job)))
    events.close()
    assert by_us[0] == by_celery[0] and by_us[2] == by_celery[2]  # the list, the channel
    assert comparable(by_us[1]) == comparable(by_celery[1])
    assert comparable(by_us[3]) == comparable(by_celery[3])


def test_a_message_goes_only_with_a_new_control_record(stack):
    """init sends the message in its script: once for a new job, never for a job that
    has a record (a cancel came first, or another process enqueued it)."""
    celery = make_celery(stack.env["REDIS_URL"])
    job = a_job(3)
    assert control.init(stack.redis, job.job_id, None, 60.0, time.time(),
                        outgoing(celery, job))
    assert not control.init(stack.redis, job.job_id, None, 60.0, time.time(),
                            outgoing(celery, job))
    assert control.state(stack.redis, job.job_id) == "queued"
    assert sum(stack.redis.llen(k) for k in priority_keys(QUEUE)) == 1
    for key in priority_keys(QUEUE):
        stack.redis.delete(key)

