"""WSGI entry point for gunicorn: ``gunicorn adapter.wsgi:app``."""

from adapter import create_app

app = create_app()
