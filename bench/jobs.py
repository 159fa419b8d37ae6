"""Following jobs through the gateway (SSE, polling) and the workers' control records."""

import datetime
import json
import time

from tasks.status import FINAL_STATUSES


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = ""):
    from devstack.stack import wait_for

    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


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
            elif line.startswith("data:") and event in FINAL_STATUSES:
                return json.loads(line[5:])
    raise RuntimeError(f"the events of job {job_id} ended without a final event")


def follow_poll(http, base_url: str, headers: dict, job_id: str, interval: float = 0.01,
                timeout: float = 120) -> dict:
    """Polls GET /jobs/<id> every `interval` seconds until the job is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = http.get(f"{base_url}/jobs/{job_id}", headers=headers, timeout=timeout).json()
        if view["status"] in FINAL_STATUSES:
            return view
        time.sleep(interval)
    raise TimeoutError(f"job {job_id} not final after {timeout}s")


def submit_async(http, base_url: str, headers: dict, path: str, body: dict) -> str:
    response = http.post(f"{base_url}{path}", json=body,
                         headers={**headers, "Prefer": "respond-async"}, timeout=60)
    if response.status_code != 202:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
    return response.json()["id"]


def all_succeeded(redis, operator_id: int, job_ids: list[str]) -> bool:
    """Every job ran to success, as its control record says once the recorder judged
    it, or as its worker reported on its operator's events stream while the recorder
    holds still (a benchmark timing the workers alone)."""
    waiting = [j for j, st in zip(job_ids, ctl_states(redis, job_ids)) if st != "succeeded"]
    return not waiting or set(waiting) <= reported_succeeded(redis, operator_id, waiting)


def reported_succeeded(redis, operator_id: int, job_ids: list[str]) -> set[str]:
    """The jobs among job_ids whose worker reported success, not yet read by the
    recorder (its stream entries)."""
    from tasks.envelope import JOB
    from tasks.names import operator_events

    wanted, found = set(job_ids), set()
    for _, fields in redis.xrange(operator_events(operator_id)):
        if fields.get(b"kind") != JOB.encode():
            continue
        event = json.loads(fields[b"body"])
        if event.get("status") == "succeeded" and event.get("job_id") in wanted:
            found.add(event["job_id"])
    return found


def ctl_states(redis, job_ids: list[str]) -> list[str | None]:
    """The workers' view of jobs: their control records' states (tasks/control.py)."""
    from tasks.names import job_control_key

    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(job_control_key(job_id), "state")
        return [v.decode() if v else None for v in pipe.execute()]
