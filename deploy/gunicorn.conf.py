"""gunicorn settings for the web role (bind comes from ADAPTER_WEB_LISTEN)."""

import multiprocessing
import os

from adapter.web.gunicorn_hooks import child_exit, multiprocess_metrics, on_exit

bind = os.environ.get("ADAPTER_WEB_LISTEN", "127.0.0.1:8000")
workers = int(os.environ.get("ADAPTER_WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = 8
timeout = 30
graceful_timeout = 20
# No gunicorn access log: the app logs each request itself, with its request id and without
# the query string (it can carry sign-in codes); ADAPTER_LOG_FORMAT=json makes it JSON.
accesslog = None

# /metrics sums the request counts of every worker (prometheus-client's multiprocess mode).
multiprocess_metrics(workers)
__all__ = ["child_exit", "on_exit"]
