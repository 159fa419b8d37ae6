"""The gateway: Livepeer's AI API in front of Celery queues.

    flask --app app run            # development server
    gunicorn -c gunicorn.conf.py   # production (see Procfile)
"""

from flask import Flask

from app import metrics
from app.api import errors, request_log
from app.api.keys import KeyCache
from app.hub import Hub, final_among_jobs
from app.settings import Settings
from app.store import db
from app.shared_pipeline import SharedPipeline
from app.store.group_commit import GroupCommit
from app.store.media import MediaStore
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.discovery import RecentWorkers
from tasks.logs import setup as setup_logging


def create_app(settings: Settings | None = None, testing: bool = False) -> Flask:
    """The app for these settings (default: read from the environment now)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(settings.flask_config(), TESTING=testing)
    app.json.sort_keys = False
    setup_logging("gateway", settings.log_level)

    app.extensions["settings"] = settings
    app.extensions["db"] = db.make_sessionmaker(settings.database_url, settings.db_pool_size,
                                                max_overflow=0)
    catalog = Catalog.load(settings.models_file)
    app.extensions["catalog"] = catalog
    app.extensions["redis"] = redis_client(settings.redis_url, settings.redis_max_connections)
    app.extensions["shared_redis"] = SharedPipeline(app.extensions["redis"],
                                                    on_group=metrics.redis_group)
    app.extensions["keys"] = KeyCache()
    app.extensions["workers"] = RecentWorkers()
    app.extensions["hub"] = Hub(app.extensions["redis"], final_among_jobs(app.extensions["db"]),
                                watchers=[app.extensions["keys"]])
    app.extensions["new_jobs"] = GroupCommit(app.extensions["db"],
                                             on_group=metrics.new_job_group)
    app.extensions["celery"] = make_celery(settings.redis_url, catalog, settings.max_job_seconds)
    app.extensions["media"] = MediaStore(settings.media_dir, settings.media_secret)
    app.teardown_appcontext(_close_session)
    errors.register(app)
    metrics.init_app(app)
    request_log.init_app(app)

    from app.api import admin, dashboard, docs, health, jobs, media, openai_compat, payments
    from app.api import metrics as metrics_api
    from app.api import pipelines

    for blueprint in (pipelines.bp, openai_compat.bp, jobs.bp, media.bp, health.bp, docs.bp,
                      admin.bp, payments.bp, metrics_api.bp, dashboard.bp):
        app.register_blueprint(blueprint)

    from app import cli

    cli.register(app)
    return app


def _close_session(exc) -> None:
    from flask import g

    session = g.pop("db_session", None)
    if session is not None:
        session.close()
