"""Sending a job to its queue: one way for the gateway, a retry and the controller.

A job's message is Celery's own (protocol 2, made by Celery's builder), sent as kombu's
Redis transport sends it: kombu's envelope pushed onto the queue's list for its priority,
then the task-sent event Flower shows, published on the events channel. These are two
Redis commands (an `Outgoing`); Celery's send_task makes them in two round trips and
spends as much CPU around them as the rest of the gateway's enqueue. Sent here, they go
in one round trip, or inside the script that makes a new job's control record
(tasks/control.py: init, ask_init). tests/test_dispatch.py holds them equal to what
send_task sends."""

import base64
import functools
import uuid
from dataclasses import dataclass

from kombu.serialization import dumps
from kombu.utils.json import dumps as json_dumps
from kombu.utils.url import parse_url

from tasks import names
from tasks.connections import pipelined
from tasks.messages import JobMessage
from tasks.queues import priority_key

# kombu's Redis transport names a fanout exchange's channel '/<db>.<exchange>/<key>'.
EVENTS_CHANNEL = "/{db}.{exchange}/{routing_key}"


@dataclass(frozen=True)
class Outgoing:
    """A job's Celery message as the Redis commands that send it: LPUSH `message` onto
    `queue_key`, then PUBLISH `event` on `event_channel`."""

    queue_key: str
    message: str
    event_channel: str
    event: str


def outgoing(celery, job: JobMessage) -> Outgoing:
    """The commands celery.send_task(RUN_JOB, ...) would run to send `job`."""
    # The task id is the job id and attempt: Flower shows each delivery, and a job's
    # attempts stay apart.
    task_id = f"{job.job_id}.{job.attempt}"
    argsrepr = f"[{job.pipeline} {job.model_id} attempt {job.attempt}]"
    headers, properties, body, sent_event = celery.amqp.create_task_message(
        task_id, names.RUN_JOB, [job.model_dump()], {}, reply_to=celery.thread_oid,
        create_sent_event=True, ignore_result=None, argsrepr=argsrepr)
    # What send_task adds: its extra options become message properties; the queue's
    # exchange is the default (anonymous) one, routed by the queue's name.
    properties.update(argsrepr=argsrepr, delivery_mode=2,
                      delivery_info={"exchange": "", "routing_key": job.queue},
                      priority=job.priority)
    message = _envelope(body, headers, properties)
    sent_event.update(queue=job.queue, exchange="", routing_key=job.queue)
    dispatcher = celery.amqp._event_dispatcher  # send_task's own, for Flower's clock
    event = dispatcher._prepare_event("task-sent", sent_event)
    routing_key = "task.sent"
    event_message = _envelope(event, dispatcher.headers, {
        "delivery_mode": dispatcher.delivery_mode,
        "delivery_info": {"exchange": dispatcher.exchange.name, "routing_key": routing_key},
        "priority": 0})
    channel = EVENTS_CHANNEL.format(db=_db(celery), exchange=dispatcher.exchange.name,
                                    routing_key=routing_key)
    return Outgoing(priority_key(job.queue, job.priority), message, channel, event_message)


def send_job(redis, outgoing_job: Outgoing) -> None:
    """Sends a job's message and its task-sent event, in one round trip."""
    def ask(pipe) -> None:
        pipe.lpush(outgoing_job.queue_key, outgoing_job.message)
        pipe.publish(outgoing_job.event_channel, outgoing_job.event)

    pipelined(redis, ask)


def _envelope(body, headers: dict, properties: dict) -> str:
    """kombu's Redis envelope: the body serialized as JSON, then base64."""
    content_type, content_encoding, data = dumps(body, serializer="json")
    properties = {**properties, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}
    return json_dumps({"body": base64.b64encode(data.encode(content_encoding)).decode(),
                       "content-encoding": content_encoding, "content-type": content_type,
                       "headers": headers, "properties": properties})


@functools.lru_cache(maxsize=8)
def _db_of(broker_url: str) -> int:
    """The Redis database of a broker URL, as kombu's Redis transport reads it."""
    return int((parse_url(broker_url)["virtual_host"] or "").strip("/") or 0)


def _db(celery) -> int:
    return _db_of(celery.conf.broker_url)
