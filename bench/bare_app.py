"""The web stack's baselines, served by the gateway's gunicorn settings, so that a ratio
shows what our gateway adds over them:

- `create_app()`: a Flask endpoint that does nothing (the intake's baseline).
- `create_redis_app()`: a Flask endpoint that pushes each JSON body onto a Redis list,
  one command, and answers 202: the least any gateway that keeps its jobs in Redis does.
- `create_celery_app()`: the least a gateway on Flask and Celery does with a job, and no
  more: `POST /echo` sends the body as a Celery task (bench/raw_celery.py's, JSON, no
  result asked for) and answers 202; `POST /echo?wait=1` sends it and answers with the
  task's result (`.get()` on the Redis result backend), as a synchronous request waits.
  No key, no validation, no row, no limits. These are floors, not targets: the intake
  and dispatch benchmarks report them beside the gateway so that a reader sees how much
  of a ratio the web stack and Celery themselves take.

    gunicorn --worker-class gevent --workers 2 'bench.bare_app:create_app()'
    gunicorn --worker-class gevent --workers 2 'bench.bare_app:create_redis_app()'
    gunicorn --worker-class gevent --workers 2 'bench.bare_app:create_celery_app()'
"""

import os

from flask import Flask, request

REDIS_LIST = "bench.bare"
ANSWER = {"id": "00000000-0000-0000-0000-000000000000", "status": "queued"}


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/echo")
    def echo():
        return ANSWER, 202

    return app


def create_redis_app() -> Flask:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    app = Flask(__name__)

    @app.post("/echo")
    def echo():
        client.lpush(REDIS_LIST, request.get_data())
        return ANSWER, 202

    return app


def create_celery_app() -> Flask:
    from bench.raw_celery import QUEUE, TASK, make_app

    celery = make_app(os.environ["REDIS_URL"])
    app = Flask(__name__)

    @app.post("/echo")
    def echo():
        body = request.get_json()
        if request.args.get("wait"):
            return celery.send_task(TASK, args=[body], queue=QUEUE).get(timeout=60), 200
        celery.send_task(TASK, args=[body], queue=QUEUE, ignore_result=True)
        return ANSWER, 202

    return app
