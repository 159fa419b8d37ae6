"""Operating the network: one job followed through the JSON logs of every process, and
the Prometheus metrics of the gateway, the recorder and a worker slot."""

from pathlib import Path

import requests

from ops_support import json_lines, scrape, total, value
from support import submit_echo, wait_for, wait_status
from tasks.celery_app import queues_for

SLOW = {"steps": 400, "step_seconds": 0.05}  # 20 s unless stopped


def test_one_job_is_followed_by_its_id_through_gateway_worker_and_recorder(
        http, gateway, auth, stack, ops_worker):
    job_id = submit_echo(http, gateway, auth, prompt="follow me")
    wait_status(http, gateway, auth, job_id, "succeeded")

    def about_job(process: str) -> list[dict]:
        return [line for line in json_lines(stack.log(process)) if line.get("job_id") == job_id]

    gateway_lines = wait_for(lambda: about_job("gateway"), what="gateway lines")
    assert any(line.get("path") == "/echo" and line.get("status") == 202
               for line in gateway_lines), gateway_lines
    worker_lines = wait_for(lambda: about_job(ops_worker.name), what="worker lines")
    assert {line["process"] for line in worker_lines} == {ops_worker.name}
    recorder_lines = wait_for(lambda: about_job("recorder"), what="recorder lines")
    assert all(line["process"] == "recorder" for line in recorder_lines)
    # Following the job afterwards is logged under its id too.
    http.get(f"{gateway}/jobs/{job_id}", headers=auth)
    wait_for(lambda: any(line.get("path") == f"/jobs/{job_id}"
                         for line in about_job("gateway")), what="GET /jobs line")


def test_gateway_metrics_show_jobs_queues_workers_and_payments(
        http, gateway, auth, stack, app, ops_worker):
    job_id = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, job_id, "succeeded")
    # The state is read in the background (METRICS_REFRESH_SECONDS): a scrape soon shows it.
    samples = wait_for(lambda: (s := scrape(http, f"{gateway}/metrics")) and (value(
        s, "genai_jobs", pipeline="echo", model="echo", status="succeeded") or 0) >= 1 and s,
        timeout=30, what="the job in the metrics")
    declared = {q.name for q in queues_for(app.extensions["catalog"])}
    shown = {dict(labels)["queue"] for name, labels in samples if name == "genai_queue_depth"}
    assert declared <= shown  # every declared queue, consumed or not
    assert value(samples, "genai_queue_depth", queue="text-to-image:tiny/unserved") == 0
    assert value(samples, "genai_workers_live") >= 2
    assert value(samples, "genai_model_workers", pipeline="echo", model="echo") >= 1
    assert value(samples, "genai_source_up", source="database") == 1
    assert value(samples, "genai_source_up", source="broker") == 1
    for name in ("genai_tickets_issued_total", "genai_tickets_winning_total",
                 "genai_tickets_redeemed_total", "genai_payments_owed_wei"):
        assert value(samples, name) is not None, name


def test_rejections_and_cancellations_are_counted_across_gunicorn_workers(
        http, gateway, auth, stack, ops_worker):
    def rejected() -> float:
        return total(scrape(requests, f"{gateway}/metrics"), "genai_admission_rejections_total",
                     pipeline="text-to-image", reason="capacity")

    before = rejected()
    body = {"prompt": "x", "model_id": "tiny/unserved", "width": 64, "height": 64}
    for _ in range(3):
        # A new connection each time: gunicorn's two workers share the requests.
        response = requests.post(f"{gateway}/text-to-image", json=body, headers=auth)
        assert response.status_code == 503
    # Every scrape, whichever worker answers it, counts all three.
    assert [rejected() for _ in range(4)] == [before + 3] * 4
    counters = list(Path(stack.base, "prometheus-gateway").glob("counter_*.db"))
    assert counters, "gunicorn workers keep their counters in PROMETHEUS_MULTIPROC_DIR"

    canceled_before = total(scrape(http, f"{gateway}/metrics"), "genai_jobs_canceled_total",
                            pipeline="echo")
    job_id = submit_echo(http, gateway, auth, **SLOW)
    wait_status(http, gateway, auth, job_id, "started")
    assert http.post(f"{gateway}/jobs/{job_id}/cancel", headers=auth).status_code == 200
    assert total(scrape(http, f"{gateway}/metrics"), "genai_jobs_canceled_total",
                 pipeline="echo") == canceled_before + 1


def test_recorder_exports_wait_and_run_histograms(http, gateway, auth, stack, ops_worker):
    def counts():
        samples = scrape(http, stack.recorder_metrics_url)
        return (value(samples, "genai_job_wait_seconds_count", pipeline="echo", model="echo") or 0,
                value(samples, "genai_job_run_seconds_count", pipeline="echo", model="echo") or 0,
                total(samples, "genai_jobs_recorded_total", pipeline="echo",
                      status="succeeded"))

    before = counts()
    job_id = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, job_id, "succeeded")
    after = wait_for(lambda: (c := counts()) != before and c, what="recorder metrics")
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1)
    samples = scrape(http, stack.recorder_metrics_url)
    assert value(samples, "genai_job_run_seconds_bucket", pipeline="echo", model="echo",
                 le="+Inf") == after[1]


def test_worker_serves_its_metrics_and_the_gateway_lists_it_for_prometheus(
        http, gateway, auth, admin_auth, stack, ops_worker):
    for _ in range(2):
        wait_status(http, gateway, auth, submit_echo(http, gateway, auth), "succeeded")

    targets = http.get(f"{gateway}/admin/scrape-targets", headers=admin_auth)
    assert targets.status_code == 200
    mine = [t for t in targets.json() if t["labels"]["worker"] == ops_worker.name]
    assert len(mine) == 1
    assert f"http://{mine[0]['targets'][0]}{mine[0]['labels']['__metrics_path__']}" \
        == ops_worker.metrics_url
    assert http.get(f"{gateway}/admin/scrape-targets", headers=auth).status_code == 403
    assert http.get(f"{gateway}/admin/scrape-targets").status_code == 401

    samples = scrape(http, ops_worker.metrics_url)
    # echo was loaded for this module's first job (a miss), then found loaded (hits).
    assert value(samples, "genai_model_load_seconds_count", pipeline="echo", model="echo",
                 kind="on_demand") == 1
    assert value(samples, "genai_model_cache_requests_total", pipeline="echo", model="echo",
                 result="miss") == 1
    assert value(samples, "genai_model_cache_requests_total", pipeline="echo", model="echo",
                 result="hit") >= 2
    assert value(samples, "genai_worker_busy", worker=ops_worker.name) == 0
    assert value(samples, "genai_worker_model_bytes", worker=ops_worker.name,
                 pipeline="echo", model="echo") is not None


def test_scrapes_read_the_network_at_most_once_a_refresh_and_need_the_token(
        stack, http, sessions):
    """However often it is scraped, the gateway reads PostgreSQL and Redis at most once
    a refresh interval; and with METRICS_TOKEN, only the token's holder may scrape."""
    import uuid

    from app.store.db import transaction
    from app.store.jobs import new_job
    from app.store.tables import ApiKey

    gateway = stack.start_gateway("gateway-metrics", workers=1, env={
        "METRICS_TOKEN": "scrape-token", "METRICS_REFRESH_SECONDS": "3600"})
    token = {"Authorization": "Bearer scrape-token"}
    assert http.get(f"{gateway}/metrics").status_code == 401
    assert http.get(f"{gateway}/metrics",
                    headers={"Authorization": "Bearer wrong"}).status_code == 401
    first = job_lines(scrape_text(http, f"{gateway}/metrics", token))
    with transaction(sessions) as session:  # a job more, of a pipeline seen nowhere else
        key = ApiKey(name="metrics", key_hash=uuid.uuid4().hex, prefix="m", role="user")
        session.add(key)
        session.flush()
        session.add(new_job(str(uuid.uuid4()), key.id, "metrics-probe", "m", {}, 1, "q"))
    for _ in range(20):  # a burst of scrapes within the hour reads nothing again
        assert job_lines(scrape_text(http, f"{gateway}/metrics", token)) == first
    assert not any("metrics-probe" in line for line in first)


def scrape_text(http, url: str, headers: dict) -> str:
    answer = http.get(url, headers=headers)
    assert answer.status_code == 200
    return answer.text


def job_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("genai_jobs{")]
