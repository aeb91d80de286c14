"""Beacon under benchmark: the demo's settings plus the ``bench`` app and its endpoint.

The ``bench`` app registers a ``bench`` stream namespace (any signed-in user may
subscribe to ``bench:all``) and serves ``/bench/publish`` (``views.py``), which
publishes inside the server process, as the in-memory layer requires.

Differences from the demo, all production-like: ``DEBUG`` off (Django would keep
every query), persistent database connections (``CONN_MAX_AGE``), the database from
``DATABASE_URL`` (the harness uses PostgreSQL), logging of warnings only.
"""

import os

import dj_database_url

from demo.settings import *  # noqa: F403
from demo.settings import INSTALLED_APPS

BENCH_DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacon_bench"),
        conn_max_age=300,
    )
}
BENCH_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]
ROOT_URLCONF = "bench.urls"
DEBUG = False
DATABASES = BENCH_DATABASES
LOGGING = BENCH_LOGGING

# Experiment switch (docs/benchmarks.md, "garbage collection"): BENCH_GC=off runs the
# server without automatic cyclic garbage collection. Never set by `make bench`.
# (BEACON_GC_TUNED=1, the Daphne unit's setting, is read by demo/asgi.py.)
if os.environ.get("BENCH_GC") == "off":
    import gc

    gc.disable()
