"""gunicorn's side of /metrics with several worker processes (prometheus-client's multiprocess
mode), shared by `hospital-adapter web` and deploy/gunicorn.conf.py."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

_OURS = "ADAPTER_METRICS_DIR_OWNED"


def multiprocess_metrics(workers: int) -> None:
    """With several workers, keep request metrics in a fresh directory they all write to.

    Must run before prometheus-client creates any metric (it reads the variable then). A
    directory the administrator set (PROMETHEUS_MULTIPROC_DIR) is used as it is.
    """
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        directory = tempfile.mkdtemp(prefix="hospital-adapter-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        os.environ[_OURS] = "1"
        values = sys.modules.get("prometheus_client.values")
        if values is not None:
            # The CLI (a FlaskGroup) built an app to list its commands before this ran, so
            # prometheus-client chose its in-process values already; the app each gunicorn
            # worker builds must write to the shared files instead.
            values.ValueClass = values.get_value_class()


def child_exit(_server: Any, worker: Any) -> None:  # noqa: ANN401 - gunicorn's objects
    """A worker ended: its live gauges go (its counts stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:  # noqa: ANN401
    """gunicorn stops: remove the metrics directory it made (never one the admin set)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.environ.get(_OURS):
        shutil.rmtree(directory, ignore_errors=True)
