"""What Beacon hears of sessions and users ending, turned into control orders.

* ``user_logged_out`` and a deleted session row: that session's connections close;
* a user deleted, or saved with ``is_active`` now false: all their connections close;
* a user saved with a new password: their connections are re-validated (those of
  other sessions fail Django's session hash check and close).

What Beacon cannot hear (a session row deleted with raw SQL, ``clearsessions``, an
expiry, a custom backend) the periodic re-validation finds within
``REVALIDATE_SECONDS``.
"""

from __future__ import annotations

import threading
from typing import Any

from django.contrib.auth import get_user_model, user_logged_out
from django.db.models.signals import post_delete, post_init, post_save

from .control import end_sessions, recheck_users

_recent = threading.local()


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        from ..models import Ticket

        Ticket.objects.filter(session_key=key).delete()  # its tickets die with it
        _recent.key = key  # the session row's deletion that follows says nothing new
        end_sessions(session_keys=[key], reason="logout")


def _session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if getattr(_recent, "key", None) == instance.session_key:
        _recent.key = None
        return
    end_sessions(session_keys=[instance.session_key], reason="session deleted")


def _state(instance: Any) -> tuple[Any, Any]:
    """Password and ``is_active`` as loaded (``__dict__``: a deferred field costs no query)."""
    return instance.__dict__.get("password"), instance.__dict__.get("is_active", True)


def _user_loaded(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._beacon_seen = _state(instance)


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    seen = getattr(instance, "_beacon_seen", None)
    now = instance._beacon_seen = _state(instance)
    if created or seen is None or seen == now:
        return
    if not now[1]:
        end_sessions(users=[instance.pk], reason="user deactivated")
    else:
        recheck_users([instance.pk])


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    end_sessions(users=[instance.pk], reason="user deleted")


def connect() -> None:
    """Called from ``BeaconConfig.ready`` (also registers the identity system checks)."""
    from django.apps import apps

    from . import checks  # noqa: F401

    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="beacon.identity.logout")
    post_init.connect(_user_loaded, sender=user_model, dispatch_uid="beacon.identity.init")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="beacon.identity.save")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="beacon.identity.delete")
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(_session_deleted, sender=Session, dispatch_uid="beacon.identity.sess")
