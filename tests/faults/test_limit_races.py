"""Limits that hold when requests race: ten at once, through two gateway processes, pass
a quota or a fair share of one exactly once."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support import make_key

pytestmark = pytest.mark.fault


def burst(gateway: str, key: str, count: int = 10) -> list[int]:
    def one(_):
        return requests.post(f"{gateway}/echo", json={"prompt": "race"}, timeout=60,
                             headers={"Authorization": f"Bearer {key}",
                                      "Prefer": "respond-async"}).status_code

    with ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(one, range(count)))


def test_a_quota_of_one_passes_one_of_ten_racing_requests(gateway, sessions, echo_worker):
    echo_worker("race-quota")
    key = make_key(sessions, "race-quota", daily_job_quota=1)
    assert burst(gateway, key) == [202] + [429] * 9


def test_a_fair_share_of_one_passes_one_of_ten_racing_requests(stack, sessions, echo_worker):
    gateway = stack.start_gateway("gateway-race", env={"MAX_ACTIVE_JOBS_PER_KEY": "1"})
    echo_worker("race-share", "--models", "echo")
    # The worker holds still: the first job stays in flight while the others race.
    from support import set_consuming

    set_consuming(stack, "race-share", "echo:echo", False)
    try:
        key = make_key(sessions, "race-share")
        assert burst(gateway, key) == [202] + [429] * 9
    finally:
        set_consuming(stack, "race-share", "echo:echo", True)
