"""The dispatch baseline: bare Celery on the same Redis. One task that returns its input
and the time it started, a solo-pool worker, the result backend's default `.get()`.

    python -m bench.raw_celery        # the worker (REDIS_URL from the environment)
"""

import os
import time

from celery import Celery

QUEUE = "bench.raw"
TASK = "bench.echo"


def make_app(redis_url: str) -> Celery:
    app = Celery("bench_raw", broker=redis_url, backend=redis_url)
    # Only what a JSON payload needs; everything else is Celery's default.
    app.conf.update(task_serializer="json", accept_content=["json"],
                    result_serializer="json", broker_connection_retry_on_startup=True,
                    worker_hijack_root_logger=False)

    @app.task(name=TASK)
    def echo(payload):
        return {"payload": payload, "started": time.time()}

    return app


def main() -> None:
    app = make_app(os.environ["REDIS_URL"])
    app.worker_main(["worker", "--pool=solo", f"--queues={QUEUE}", "--loglevel=WARNING",
                     "--hostname=bench-raw@%h", "--without-mingle", "--without-gossip"])


if __name__ == "__main__":
    main()
