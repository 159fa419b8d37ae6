"""The gateway: Livepeer's AI API in front of Celery queues.

    flask --app app run            # development server
    gunicorn 'app:create_app()'    # production (see Procfile)
"""

import logging

import redis as redis_lib
from flask import Flask

from app import db, errors
from app.config import from_env
from app.media import MediaStore
from tasks.catalog import Catalog
from tasks.celery_app import make_celery


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(from_env())
    app.config.update(overrides or {})
    app.json.sort_keys = False
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    catalog = Catalog.load(app.config["MODELS_FILE"])
    app.extensions["catalog"] = catalog
    app.extensions["redis"] = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    app.extensions["celery"] = make_celery(app.config["REDIS_URL"], catalog,
                                           app.config["MAX_JOB_SECONDS"])
    app.extensions["media"] = MediaStore(app.config["MEDIA_DIR"], app.config["MEDIA_SECRET"])
    errors.register(app)

    from app.api import admin, docs, health, jobs, media, pipelines

    for blueprint in (pipelines.bp, jobs.bp, media.bp, health.bp, docs.bp, admin.bp):
        app.register_blueprint(blueprint)

    from app import cli

    cli.register(app)
    return app
