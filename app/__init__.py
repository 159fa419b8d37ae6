"""The gateway: Livepeer's AI API in front of Celery queues.

    flask --app app run            # development server
    gunicorn -c gunicorn.conf.py   # production (see Procfile)
"""

from flask import Flask

from app import db, errors, metrics, request_log
from app.config import from_env
from app.media import MediaStore
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.logs import setup as setup_logging


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(from_env())
    app.config.update(overrides or {})
    app.json.sort_keys = False
    setup_logging("gateway", app.config["LOG_LEVEL"])

    db.init_app(app)
    catalog = Catalog.load(app.config["MODELS_FILE"])
    app.extensions["catalog"] = catalog
    app.extensions["redis"] = redis_client(app.config["REDIS_URL"])
    app.extensions["celery"] = make_celery(app.config["REDIS_URL"], catalog,
                                           app.config["MAX_JOB_SECONDS"])
    app.extensions["media"] = MediaStore(app.config["MEDIA_DIR"], app.config["MEDIA_SECRET"])
    errors.register(app)
    metrics.init_app(app)
    request_log.init_app(app)

    from app.api import admin, dashboard, docs, health, jobs, media, payments, pipelines
    from app.api import metrics as metrics_api

    for blueprint in (pipelines.bp, jobs.bp, media.bp, health.bp, docs.bp, admin.bp,
                      payments.bp, metrics_api.bp, dashboard.bp):
        app.register_blueprint(blueprint)

    from app import cli

    cli.register(app)
    return app
