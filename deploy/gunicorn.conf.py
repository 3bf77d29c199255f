"""gunicorn settings for the web role (bind comes from ADAPTER_WEB_LISTEN)."""

import multiprocessing
import os

bind = os.environ.get("ADAPTER_WEB_LISTEN", "127.0.0.1:8000")
workers = int(os.environ.get("ADAPTER_WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = 8
timeout = 30
graceful_timeout = 20
accesslog = "-"
# No query strings in the access log: they can carry auth codes.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss'
