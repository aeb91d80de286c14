"""The three credentials Beacon ships: the session cookie, a one-time ticket, a bearer JWT.

Name them (or your own :class:`~beacon.identity.core.Authenticator`) in
``BEACON["AUTHENTICATORS"]``; they are tried in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ..conf import get_config
from ..protocol import CloseCode
from .core import Authenticator, Handshake, Identity, Refused, session_store

# -- the session cookie ---------------------------------------------------------------------


class SessionAuthenticator(Authenticator):
    """The Django session cookie: the signed-in user of that session (today's behaviour).

    The lookup is Django's own (``auth.get_user``: backend, session hash check).
    """

    method = "session"

    def authenticate(self, handshake: Handshake) -> Identity | None:
        key = handshake.cookies.get(settings.SESSION_COOKIE_NAME)
        if not key:
            return None
        session = _loader(session_store())(key)
        user = get_user(_Request(session))  # type: ignore[arg-type]  # a request with a session
        if not user.is_authenticated:
            return None  # a stale cookie is no credential: maybe the next one is
        return Identity(user=user, method=self.method, session_key=key)


def _loader(store: Any) -> Any:
    """The session class to load a handshake's session with: Django's database engine
    reads its row with one plain query (:class:`_DbSessionRead`); any other engine
    (a subclass of that one too) loads itself."""
    return _DbSessionRead if store is DbSessionStore else store


class _DbSessionRead(DbSessionStore):
    """Django's database session, loaded as ``SessionStore.load`` does — the unexpired
    row of the key, decoded; none: an empty session with no key — but in plain SQL: the
    ORM's query building was half of a handshake's database CPU. Everything else
    (``get_user``'s flush or key cycle, saving) is Django's own."""

    @property
    def key_salt(self) -> str:
        """Django's, which it derives from the class name: the data is signed with it."""
        return "django.contrib.sessions." + DbSessionStore.__qualname__

    def load(self) -> dict[str, Any]:
        model = self.model
        connection = connections[router.db_for_read(model)]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('session_data')} FROM {quote(model._meta.db_table)} "
                f"WHERE {quote('session_key')} = %s AND {quote('expire_date')} > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])


class _Request:
    """The little of a request that ``auth.get_user`` reads."""

    def __init__(self, session: Any) -> None:
        self.session = session


def ended(identities: Iterable[Identity]) -> set[Identity]:
    """The identities whose session ended (logged out, deleted, expired, password
    changed) or whose user is gone or inactive, or whose credential expired.

    Two queries whatever their number (with the database session engines): the
    sessions, then the users.
    """
    return _check(list(identities))[0]


def _check(identities: list[Identity]) -> tuple[set[Identity], dict[Any, Any]]:
    """:func:`ended`'s answer, and the users it loaded (by pk) for those still live."""
    now = time.time()
    dead = {i for i in identities if i.expired(now)}
    live = [i for i in identities if i not in dead]
    hashes = session_hashes({i.session_key for i in live if i.session_key})
    users = {u.pk: u for u in _users({i.user_id for i in live})}
    for identity in live:
        user = users.get(identity.user_id)
        if user is None or not getattr(user, "is_active", True):
            dead.add(identity)
        elif identity.session_key is not None:
            stored = hashes.get(identity.session_key)
            if stored is None or not _hash_matches(user, stored):
                dead.add(identity)
    return dead, users


def _users(ids: set[Any]) -> list[Any]:
    if not ids:
        return []
    return list(get_user_model()._default_manager.filter(pk__in=ids))


def _hash_matches(user: Any, stored: str) -> bool:
    """``auth.get_user``'s check: the session's hash is the user's (or a fallback key's)."""
    if not hasattr(user, "get_session_auth_hash"):
        return True
    if constant_time_compare(stored, user.get_session_auth_hash()):
        return True
    fallback = getattr(user, "_get_session_auth_hash", None)
    return fallback is not None and any(
        constant_time_compare(stored, fallback(secret=key))
        for key in getattr(settings, "SECRET_KEY_FALLBACKS", [])
    )


def session_hashes(keys: set[str]) -> dict[str, str]:
    """``{session key: auth hash}`` of those sessions that still exist and hold a user."""
    if not keys:
        return {}
    engine = settings.SESSION_ENGINE
    store = session_store()
    found: dict[str, str] = {}
    if engine in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        model = store.get_model_class()
        rows = model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        for key, data in rows.values_list("session_key", "session_data"):
            auth_hash = store().decode(data).get(HASH_SESSION_KEY)
            if auth_hash:
                found[key] = auth_hash
        return found
    for key in keys:  # other engines: one look-up per session
        auth_hash = store(key).load().get(HASH_SESSION_KEY)
        if auth_hash:
            found[key] = auth_hash
    return found


# -- one-time tickets -------------------------------------------------------------------


def issue_ticket(user: Any, *, session_key: str | None, credential_expires: float | None) -> str:
    """A new ticket for ``user``: single use, valid ``TICKET_SECONDS``. Returns its text."""
    from ..models import Ticket

    text = secrets.token_urlsafe(32)
    now = timezone.now()
    Ticket.objects.filter(expires_at__lt=now).delete()  # the table holds only live tickets
    Ticket.objects.create(
        digest=_digest(text),
        user_id=user.pk,
        session_key=session_key,
        expires_at=now + timedelta(seconds=get_config()["TICKET_SECONDS"]),
        credential_expires=credential_expires,
    )
    return text


@dataclass(frozen=True, slots=True)
class Redeemed:
    """What a used ticket was bound to."""

    pk: Any  # the user's (an Identity's ``user`` until the user is loaded)
    session_key: str | None
    credential_expires: float | None


def redeem_ticket(text: str) -> Redeemed | None:
    """Delete the ticket's row (so that nobody can use it again) and say what it was
    bound to; None if there is none (never issued, already used, expired).

    One statement where the database has ``DELETE … RETURNING`` (PostgreSQL, SQLite):
    only one redeemer can delete the row. Elsewhere the row is locked, then deleted.
    """
    from ..models import Ticket

    if not 16 <= len(text) <= 128:
        return None
    digest, now = _digest(text), timezone.now()
    user_field = Ticket._meta.get_field("user")
    connection = connections[router.db_for_write(Ticket)]
    if connection.vendor in ("postgresql", "sqlite"):
        q = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {q(Ticket._meta.db_table)} WHERE {q('digest')} = %s RETURNING"
                f" {q(user_field.column)}, {q('session_key')}, {q('credential_expires')},"
                f" {q('expires_at')} > %s",
                [digest, connection.ops.adapt_datetimefield_value(now)],
            )
            found = cursor.fetchone()
        if found is None or not found[3]:
            return None
        pk = user_field.target_field.to_python(found[0])
        return Redeemed(pk, found[1], found[2])
    with transaction.atomic():
        row = Ticket.objects.select_for_update().filter(digest=digest).first()
        if row is None:
            return None
        deleted, _ = Ticket.objects.filter(pk=row.pk).delete()
    if not deleted or row.expires_at <= now:
        return None
    return Redeemed(row.user_id, row.session_key, row.credential_expires)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class TicketAuthenticator(Authenticator):
    """``?ticket=…`` from ``POST /beacon/tickets/``: single use, short-lived, bound to the
    user and to the session (or the token's expiry) that asked for it."""

    method = "ticket"

    def authenticate(self, handshake: Handshake) -> Identity | None:
        text = handshake.query.get("ticket")
        if text is None:
            return None
        redeemed = redeem_ticket(text)
        if redeemed is None:
            raise Refused(CloseCode.UNAUTHENTICATED, "unknown, used or expired ticket")
        identity = Identity(
            user=redeemed,  # has the user's pk, all _check needs; the user comes next
            method=self.method,
            session_key=redeemed.session_key,
            expires_at=redeemed.credential_expires,
        )
        dead, users = _check([identity])
        if dead:  # its session ended, or its user is inactive, since it was issued
            raise Refused(CloseCode.UNAUTHENTICATED, "the ticket's session has ended")
        return dataclasses.replace(identity, user=users[redeemed.pk])


# -- bearer tokens ----------------------------------------------------------------------


class BearerTokenAuthenticator(Authenticator):
    """``Authorization: Bearer <JWT>``, verified with PyJWT.

    ``JWT_ALGORITHMS`` (default ``["HS256"]``) with ``JWT_KEY`` (default: ``SECRET_KEY``;
    for RS256/ES256 the public key, PEM). ``exp`` is required; ``nbf``, ``aud``
    (``JWT_AUDIENCE``) and ``iss`` (``JWT_ISSUER``) are checked, with ``JWT_LEEWAY_SECONDS``.
    The user is the one whose ``JWT_USER_ID_FIELD`` equals the ``JWT_USER_ID_CLAIM``
    claim, so djangorestframework-simplejwt's access tokens work unchanged (and its
    refresh tokens, ``token_type`` other than ``JWT_TOKEN_TYPE``, are refused).
    """

    method = "bearer"
    accepts_originless = True

    def authenticate(self, handshake: Handshake) -> Identity | None:
        token = handshake.bearer_token()
        if token is None:
            return None
        claims = verify_token(token)
        user = token_user(claims)
        return Identity(user=user, method=self.method, expires_at=float(claims["exp"]))


def verify_token(token: str) -> dict[str, Any]:
    """The token's claims, or :class:`Refused` (4401 expired, 4001 anything else)."""
    try:
        import jwt
    except ImportError:  # pragma: no cover - a deployment without the jwt extra
        raise Refused(CloseCode.UNAUTHENTICATED, "bearer tokens need PyJWT") from None
    config = get_config()
    key = config["JWT_KEY"] or settings.SECRET_KEY
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(config["JWT_ALGORITHMS"]),
            audience=config["JWT_AUDIENCE"],
            issuer=config["JWT_ISSUER"],
            leeway=config["JWT_LEEWAY_SECONDS"],
            options={"require": ["exp"], "verify_aud": config["JWT_AUDIENCE"] is not None},
        )
    except jwt.ExpiredSignatureError:
        raise Refused(CloseCode.CREDENTIAL_EXPIRED, "token expired") from None
    except jwt.PyJWTError as exc:
        raise Refused(CloseCode.UNAUTHENTICATED, f"invalid token: {type(exc).__name__}") from None
    wanted = config["JWT_TOKEN_TYPE"]
    if wanted and "token_type" in claims and claims["token_type"] != wanted:
        raise Refused(CloseCode.UNAUTHENTICATED, "not an access token")
    # The leeway stretches exp: the socket lives until the token stops verifying.
    claims["exp"] = float(claims["exp"]) + float(config["JWT_LEEWAY_SECONDS"])
    return claims


def token_user(claims: dict[str, Any]) -> Any:
    """The active user a token's claims name, or :class:`Refused` (4001)."""
    config = get_config()
    user_id = claims.get(config["JWT_USER_ID_CLAIM"])
    if user_id is None or isinstance(user_id, (dict, list)):
        raise Refused(CloseCode.UNAUTHENTICATED, "the token names no user")
    model = get_user_model()
    try:
        user = model._default_manager.filter(**{config["JWT_USER_ID_FIELD"]: user_id}).first()
    except (ValueError, TypeError, ValidationError):
        user = None
    if user is None or not getattr(user, "is_active", True):
        raise Refused(CloseCode.UNAUTHENTICATED, "no such active user")
    return user
