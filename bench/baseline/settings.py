"""BASELINE settings: the demo's database and sessions, the guide's apps and layer.

``BASELINE_LAYER``: ``memory`` (InMemoryChannelLayer), ``pubsub``
(``RedisPubSubChannelLayer``) or ``core`` (the guide's ``RedisChannelLayer`` with its
default capacity of 100), on ``REDIS_URL``.
"""

import os

from bench.settings import BENCH_DATABASES, BENCH_LOGGING
from demo.settings import *  # noqa: F403
from demo.settings import SECRET_KEY  # noqa: F401  (re-exported)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = []
ROOT_URLCONF = "bench.baseline.urls"
ASGI_APPLICATION = "bench.baseline.asgi.application"
DEBUG = False
DATABASES = BENCH_DATABASES
LOGGING = BENCH_LOGGING

_layer = os.environ.get("BASELINE_LAYER", "memory")
_redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    if _layer == "memory"
    else {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"
        if _layer == "pubsub"
        else "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_redis]},
    }
}
