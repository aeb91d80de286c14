"""The benchmark database: created, migrated, emptied of events, filled with users.

Users ``bench0000`` … and one session each, written in bulk (the password hash is
computed once). A socket of user ``u`` sends that user's ``sessionid`` cookie.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from .servers import ROOT

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/beacon_bench"


@dataclass(frozen=True, slots=True)
class BenchUser:
    index: int
    pk: int
    cookie: str


def create_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )


def setup_django(url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()


def make_users(count: int) -> list[BenchUser]:
    """``count`` bench users with a fresh session each; the beacon tables emptied."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.utils import timezone

    User = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE beacon_notification, beacon_event, beacon_stream RESTART IDENTITY CASCADE"
        )
    names = [f"bench{n:04d}" for n in range(count)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password("bench")
    User.objects.bulk_create(
        [User(username=n, password=password) for n in names if n not in have],
        batch_size=1000,
    )
    users = list(User.objects.filter(username__in=names).order_by("username"))
    Session.objects.filter(expire_date__lt=timezone.now()).delete()
    store = SessionStore()
    sessions, out = [], []
    expire = timezone.now() + timedelta(days=1)
    backend = "django.contrib.auth.backends.ModelBackend"
    for index, user in enumerate(users):
        key = store._get_new_session_key()
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: backend,
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        encoded = store.encode(data)
        sessions.append(Session(session_key=key, session_data=encoded, expire_date=expire))
        out.append(BenchUser(index=index, pk=user.pk, cookie=key))
    Session.objects.bulk_create(sessions, batch_size=1000)
    return out
