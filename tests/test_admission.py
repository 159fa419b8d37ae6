"""The models' measured times (tasks/admission.py), folded in the stack's Redis."""

import uuid

import pytest

from tasks import admission
from tasks.names import model_stats_key


def test_measured_times_fold_in_order_into_each_models_moving_average(stack):
    one, other = f"observe-{uuid.uuid4()}", f"observe-{uuid.uuid4()}"
    admission.observe(stack.redis, [("echo", one, "run", 10.0), ("echo", other, "load", 3.0),
                                    ("echo", one, "run", 20.0), ("echo", one, "load", 0.5)])
    weight = admission.SMOOTHING
    assert stats(stack.redis, one) == {"run": pytest.approx((1 - weight) * 10.0 + weight * 20.0),
                                       "load": 0.5}
    assert stats(stack.redis, other) == {"load": 3.0}
    assert 0 < stack.redis.ttl(model_stats_key("echo", one)) <= admission.STATS_TTL_SECONDS
    admission.observe(stack.redis, [])  # nothing measured: nothing asked


def stats(redis, model_id: str) -> dict[str, float]:
    raw = redis.hgetall(model_stats_key("echo", model_id))
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def test_a_wait_is_estimated_from_the_depth_of_the_queue_the_job_takes(stack):
    """One round trip reads both queues a job may take; each estimate counts its own."""
    from tasks import names, queues

    model = f"estimate-{uuid.uuid4()}"
    warm, cold = names.model_queue("echo", model), names.cold_queue("echo")
    admission.observe(stack.redis, [("echo", model, "run", 2.0), ("echo", model, "load", 5.0)])
    before = queues.depth(stack.redis, cold)
    stack.redis.rpush(queues.priority_keys(warm)[1], *[b"waiting"] * 3)  # 3 ahead, warm
    holds = {"models": [{"pipeline": "echo", "model_id": model, "ready": True}], "busy": None}
    loads = {"models": [], "dynamic": ["echo"], "busy": "another job"}
    with stack.redis.pipeline(transaction=False) as pipe:
        admission.ask_estimates(pipe, "echo", model)
        replies = pipe.execute()
    # Warm: one idle worker takes the first; the other two wait for it, then half a job.
    assert admission.wait_from(replies, [holds, loads], warm, "echo", model) == (3 - 1) * 2.0 + 1.0
    # Cold: what waits there, then half a job and its load, on the one busy loader.
    per_job = 2.0 + 5.0
    assert admission.wait_from(replies, [holds, loads], cold, "echo", model) == (
        before * per_job + per_job / 2)
    assert admission.wait_from(replies, [loads], warm, "echo", model) == float("inf")
    assert admission.estimate_wait(stack.redis, [holds, loads], warm, "echo", model) == 5.0
    stack.redis.delete(*queues.priority_keys(warm))
