"""The intake baseline: a Flask endpoint that does nothing, served by the gateway's
gunicorn settings, so the ratio shows what our gateway adds over the web stack itself.

    gunicorn --worker-class gevent --workers 2 'bench.bare_app:create_app()'
"""

from flask import Flask

ANSWER = {"id": "00000000-0000-0000-0000-000000000000", "status": "queued"}


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/echo")
    def echo():
        return ANSWER, 202

    return app
