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
