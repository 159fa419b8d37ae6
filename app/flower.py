"""Flower for this network: `celery --app tasks.celery_app:app flower`, with two changes.

- Basic auth is required: FLOWER_BASIC_AUTH=user:password (Flower reads it; several
  pairs comma-separated). FLOWER_BASIC_AUTH=off runs it open, for development only (its
  HTTP API then answers only with FLOWER_UNAUTHENTICATED_API=1). `make run` generates
  credentials into .run/flower_auth.
- Its broker page and /api/queues/length list every declared queue (each pipeline's
  and model's, tasks/celery_app.py), not only those a worker consumes now: a queue
  with jobs and no consumer is the one to see.

    python -m app.flower --address=127.0.0.1 --port=5555
"""

import os
import sys

AUTH_HELP = ("FLOWER_BASIC_AUTH is not set: give it user:password (several pairs "
             "comma-separated), or 'off' for an open Flower (development only).")


def show_declared_queues() -> None:
    from flower.views import BaseHandler

    active_only = BaseHandler.get_active_queue_names

    def declared_and_active(handler) -> list[str]:
        declared = {q.name for q in handler.capp.conf.task_queues or [] if q.name}
        return sorted(declared | set(active_only(handler)))

    BaseHandler.get_active_queue_names = declared_and_active


def main(argv: list[str]) -> None:
    auth = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
    if not auth:
        raise SystemExit(AUTH_HELP)
    if auth == "off":
        del os.environ["FLOWER_BASIC_AUTH"]
    show_declared_queues()
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", "--app", "tasks.celery_app:app", "flower", *argv]
    celery_main()


if __name__ == "__main__":
    main(sys.argv[1:])
