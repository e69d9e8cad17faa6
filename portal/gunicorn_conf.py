"""gunicorn settings of the image, the compose file and `manage.py benchmark --http`.

One file, so what is measured is what runs: `gunicorn -c python:portal.gunicorn_conf
portal.wsgi:application`. Each value can be changed from the environment.
"""

from __future__ import annotations

import gc
import os

bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
# One process per core; each serves several requests at once in threads, so a slow download
# does not hold up image requests. Decoded pixels are cached per process.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("PORTAL_WEB_THREADS", "4"))
# Large ZIP downloads stream for minutes; the worker keeps its heartbeat while sending.
timeout = int(os.environ.get("PORTAL_WEB_TIMEOUT", "300"))
graceful_timeout = 30
# Load Django and every view once, before the workers fork: they start ready and share the
# memory of the code.
preload_app = True
keepalive = 5
# A read-only root file system needs the heartbeat files somewhere writable; gunicorn's control
# socket (a file in $HOME) is not used.
worker_tmp_dir = os.environ.get("PORTAL_WORKER_TMP_DIR") or None
control_socket_disable = True
# The TLS proxy in front adds X-Forwarded-For and -Proto; only it may (FORWARDED_ALLOW_IPS).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Access log on stdout: address, request line (share tokens and query strings masked by
# sharing.logfilter in each worker), status, size, milliseconds and user agent.
accesslog = os.environ.get("PORTAL_ACCESS_LOG", "-") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def pre_fork(server, worker) -> None:  # noqa: ANN001, ARG001 - gunicorn's hook signature
    """Hide what the preloaded app made from the garbage collector before each worker forks.

    Django, every view, numpy and pydicom are over a hundred thousand objects that live as
    long as the process. Left in the collector's generations, the first collections in a new
    worker walk all of them (a few hundred milliseconds, in some recipient's first request)
    and each later full collection does it again; writing their headers also unshares the
    memory the workers would otherwise share with the master.
    """
    gc.collect()
    gc.freeze()
