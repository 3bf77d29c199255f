"""WSGI entry point for gunicorn: ``gunicorn adapter.wsgi:app``."""

from adapter import create_app
from adapter.config import load_config
from adapter.runtime import Runtime

_runtime = Runtime.from_config(load_config())
_runtime.warm_up()  # in each worker process (no preload): ready before it serves
app = create_app(runtime=_runtime)
