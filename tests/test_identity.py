"""Identity in one process: the credentials' rules, revocation, the per-user limits."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.test import Client as HttpClient

from beacon.identity import Handshake, Identity, Refused, identify, revoke
from beacon.identity.authenticators import ended, issue_ticket, redeem_ticket
from beacon.identity.control import _dead
from beacon.protocol import CloseCode
from beacon.publishing import apublish_ephemeral
from beacon.routing import websocket_application, websocket_urlpatterns

from .conftest import Client, connect
from .servers import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://testserver"
BEARER = "beacon.identity.BearerTokenAuthenticator"


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


def handshake(*, token: str | None = None, origin: str | None = ORIGIN, **query: str) -> Handshake:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Handshake(headers=headers, query=query, cookies={}, origin=origin)


def code_of(hs: Handshake) -> CloseCode:
    with pytest.raises(Refused) as info:
        identify(hs)
    return info.value.code


def hs256(user: Any, lifetime: float = 60, key: str | None = None, **claims: Any) -> str:
    body = {"user_id": user.pk, "exp": time.time() + lifetime, **claims}
    return jwt.encode(body, key or django_settings.SECRET_KEY, algorithm="HS256")


# -- the session cookie ------------------------------------------------------------------


def _by_django(key: str) -> Any:
    """Django's own answer for a session key: ``auth.get_user`` on its session store."""
    from importlib import import_module

    from django.contrib.auth import get_user

    class Request:
        session = import_module(django_settings.SESSION_ENGINE).SessionStore(key)

    return get_user(Request())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"]
)
def test_a_session_cookie_is_whatever_django_says_it_is(
    alice: Any, make_user: Any, settings: Any, engine: str
) -> None:
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    settings.SESSION_ENGINE = engine
    bob, carol = make_user("bob"), make_user("carol")
    live, expired, changed = session_cookie(alice), session_cookie(bob), session_cookie(carol)
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now())
    carol.set_password("another")  # the session's auth hash no longer matches
    carol.save()

    def cookie_hs(key: str) -> Handshake:
        return Handshake(headers={}, query={}, cookies={"sessionid": key}, origin=ORIGIN)

    identity = identify(cookie_hs(live))
    assert identity is not None and identity.user == alice == _by_django(live)
    assert identity.session_key == live
    for key in (expired, "no-such-session-key", "short"):  # (cached_db: still cached)
        identity = identify(cookie_hs(key))
        by_django = _by_django(key)
        assert (identity.user if identity else None) == (by_django if by_django.pk else None)
    if engine.endswith(".db"):
        assert identify(cookie_hs(expired)) is None
    assert Session.objects.filter(session_key=changed).exists()
    assert identify(cookie_hs(changed)) is None
    # As Django does on a hash that no longer matches: the session is flushed.
    assert not Session.objects.filter(session_key=changed).exists()


# -- bearer tokens -----------------------------------------------------------------------


def test_bearer_tokens_check_signature_expiry_audience_and_not_before(
    alice: Any, settings: Any
) -> None:
    settings.BEACON = {"AUTHENTICATORS": [BEARER], "JWT_AUDIENCE": "beacon"}
    identity = identify(handshake(token=hs256(alice, aud="beacon")))
    assert identity is not None and identity.user == alice and identity.method == "bearer"
    assert identity.expires_at is not None and identity.expires_at > time.time()
    assert code_of(handshake(token=hs256(alice, -1, aud="beacon"))) == CloseCode.CREDENTIAL_EXPIRED
    assert code_of(handshake(token=hs256(alice, aud="elsewhere"))) == CloseCode.UNAUTHENTICATED
    assert code_of(handshake(token=hs256(alice))) == CloseCode.UNAUTHENTICATED  # no aud
    future = hs256(alice, aud="beacon", nbf=time.time() + 30)
    assert code_of(handshake(token=future)) == CloseCode.UNAUTHENTICATED
    assert code_of(handshake(token=hs256(alice, key="k" * 40, aud="beacon"))) == 4001
    no_exp = jwt.encode({"user_id": alice.pk}, django_settings.SECRET_KEY, algorithm="HS256")
    assert code_of(handshake(token=no_exp)) == CloseCode.UNAUTHENTICATED
    assert code_of(handshake(token="not.a.token")) == CloseCode.UNAUTHENTICATED
    refresh = hs256(alice, aud="beacon", token_type="refresh")
    assert code_of(handshake(token=refresh)) == CloseCode.UNAUTHENTICATED


def test_leeway_claim_and_rs256_are_configurable(alice: Any, settings: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.BEACON = {
        "AUTHENTICATORS": [BEARER],
        "JWT_ALGORITHMS": ["RS256"],
        "JWT_KEY": public.decode(),
        "JWT_USER_ID_CLAIM": "sub",
        "JWT_LEEWAY_SECONDS": 30,
    }
    text = jwt.encode({"sub": str(alice.pk), "exp": time.time() - 5}, private, algorithm="RS256")
    identity = identify(handshake(token=text))
    assert identity is not None and identity.user == alice  # 5 s late, within the leeway
    assert identity.expires_at is not None and identity.expires_at > time.time()
    # Only the configured algorithms count: an HS256 token is refused.
    assert code_of(handshake(token=hs256(alice, sub=str(alice.pk)))) == 4001
    for sub in ("999999", "abc", None):
        assert code_of(handshake(token=jwt.encode(
            {"sub": sub, "exp": time.time() + 60}, private, algorithm="RS256"
        ))) == CloseCode.UNAUTHENTICATED


def test_a_bearer_token_of_an_inactive_user_is_refused(alice: Any, settings: Any) -> None:
    settings.BEACON = {"AUTHENTICATORS": [BEARER]}
    alice.is_active = False
    alice.save()
    assert code_of(handshake(token=hs256(alice))) == CloseCode.UNAUTHENTICATED


def test_an_originless_handshake_counts_only_a_bearer_token(alice: Any, settings: Any) -> None:
    ticket = issue_ticket(alice, session_key=None, credential_expires=None)
    assert identify(handshake(origin=None, ticket=ticket)) is None  # ignored: anonymous
    assert identify(handshake(ticket=ticket)) is not None  # unused, so still good


# -- tickets -----------------------------------------------------------------------------


def test_a_ticket_is_single_use_and_dies_with_its_session(alice: Any, settings: Any) -> None:
    ticket = issue_ticket(alice, session_key=None, credential_expires=None)
    assert redeem_ticket(ticket) is not None
    assert redeem_ticket(ticket) is None
    assert redeem_ticket("x" * 43) is None and redeem_ticket("") is None

    client = HttpClient()
    client.force_login(alice)
    answer = client.post("/beacon/tickets/").json()
    assert set(answer) == {"ticket", "expires_in"}
    client.post("/accounts/logout/")
    assert code_of(handshake(ticket=answer["ticket"])) == CloseCode.UNAUTHENTICATED


def test_a_ticket_handshake_is_three_statements_and_yields_its_live_user(
    alice: Any, django_assert_num_queries: Any
) -> None:
    """The ticket's row deleted and read at once, its session, its user: each once."""
    client = HttpClient()
    client.force_login(alice)
    ticket = client.post("/beacon/tickets/").json()["ticket"]
    with django_assert_num_queries(3):
        identity = identify(handshake(ticket=ticket))
    assert identity is not None and identity.method == "ticket"
    assert identity.user == alice and identity.user.is_active
    assert identity.session_key == client.session.session_key


@pytest.fixture
def fresh_http_counts() -> Any:
    from beacon.identity.limits import _hits, reset_http_counts

    _hits("warm-up")  # makes the Redis client, when there is one, so that reset clears it
    reset_http_counts()
    yield
    reset_http_counts()


def test_the_ticket_endpoint_wants_csrf_or_a_token_and_is_rate_limited(
    alice: Any, settings: Any, django_user_model: Any, fresh_http_counts: None
) -> None:
    settings.BEACON = {"AUTHENTICATORS": [BEARER], "HTTP_WRITES_PER_MINUTE": 3}
    strict = HttpClient(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/beacon/tickets/").json()["error"] == "csrf"
    token = HttpClient(enforce_csrf_checks=True)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {hs256(alice)}"}
    answers = [token.post("/beacon/tickets/", **auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"] == "rate_limited" and "Retry-After" in answers[-1]
    # The other write endpoints share the user's budget; another user has their own.
    browser = HttpClient()
    browser.force_login(alice)
    body = '{"up_to": 0}'
    assert browser.post("/beacon/notifications/read/", body, "application/json").status_code == 429
    bob = django_user_model.objects.create_user("bob")
    browser.force_login(bob)
    assert browser.post("/beacon/notifications/read/", body, "application/json").status_code == 200
    assert token.post("/beacon/tickets/", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    settings.BEACON = {}  # the bearer authenticator is not enabled: no tickets for tokens
    assert token.post("/beacon/tickets/", **auth).status_code == 401


# -- re-validation -----------------------------------------------------------------------


def test_revalidation_asks_twice_for_any_number_of_sockets(
    make_user: Any, django_assert_num_queries: Any
) -> None:
    users = [make_user(f"u{i}") for i in range(5)]
    keys = [session_cookie(u) for u in users]
    identities = [
        Identity(user=u, method="session", session_key=k)
        for u, k in zip(users, keys, strict=True)
        for _ in range(4)
    ]
    users[0].set_password("changed")
    users[0].save()
    users[1].is_active = False
    users[1].save()
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key=keys[2]).delete()
    with django_assert_num_queries(2):
        dead = _dead(identities)
    assert {i.user.username for i in dead} == {"u0", "u1", "u2"}
    assert len(dead) == 12
    assert ended([Identity(user=users[3], method="bearer", expires_at=time.time() - 1)])


# -- through the real stack: middleware, consumer, orders ----------------------------------


async def stack_client(cookie: str | None = None, path: str = "/ws/") -> tuple[Any, Client]:
    headers = [(b"origin", ORIGIN.encode()), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(websocket_application(), path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, Client(communicator)


async def test_a_password_change_elsewhere_closes_the_socket(alice: Any, db_call: Any) -> None:
    cookie = await db_call(session_cookie, alice)
    communicator, client = await stack_client(cookie)
    assert (await client.receive())["type"] == "welcome"

    def change() -> None:
        alice.refresh_from_db()
        alice.set_password("a new one")
        alice.save()

    await db_call(change)
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4001}
    await communicator.disconnect()


async def test_revoke_unsubscribes_and_stops_even_ephemeral_frames(
    alice: Any, make_user: Any, db_call: Any, settings: Any
) -> None:
    from beacon.streams import StreamPolicy, register

    allowed = {"alice"}

    @register("club")
    class ClubPolicy(StreamPolicy):
        def can_subscribe(self, user: Any, key: str) -> bool:
            return user.username in allowed

    async with connect(alice) as client:
        assert (await client.subscribe("club:1"))["type"] == "subscribed"
        await apublish_ephemeral("club:1", "typing", {"n": 1})
        assert (await client.receive_type("typing"))["n"] == 1
        await db_call(revoke, "club:1", alice)  # still allowed: nothing happens
        allowed.clear()
        await db_call(revoke, "club:1")
        gone = await client.receive_type("unsubscribed")
        assert gone == {"type": "unsubscribed", "stream": "club:1", "reason": "forbidden"}
        await apublish_ephemeral("club:1", "typing", {"n": 2})
        await client.send({"op": "ping", "id": 1})
        assert (await client.receive_type("pong", "typing"))["type"] == "pong"


async def test_a_users_sockets_share_one_rate_limit(
    alice: Any, make_user: Any, settings: Any
) -> None:
    settings.BEACON = {"USER_RATE_LIMIT_BURST": 3, "USER_RATE_LIMIT_PER_SECOND": 0.01}
    bob = await database_sync_to_async(make_user)("bob")
    async with connect(alice) as one, connect(alice) as two, connect(bob) as other:
        answers = []
        for client in (one, two, one, two):
            await client.send({"op": "read", "stream": f"user:{alice.pk}", "up_to": 0, "id": 1})
            answers.append(await client.receive_type("ack", "error"))
        assert [a["type"] for a in answers] == ["ack", "ack", "ack", "error"]
        assert answers[-1]["code"] == "rate_limited"
        await two.send({"op": "ping", "id": 2})  # refused a frame, the socket stays
        assert (await two.receive_type("pong"))["ref"] == 2
        await other.send({"op": "read", "stream": f"user:{bob.pk}", "up_to": 0, "id": 3})
        assert (await other.receive_type("ack", "error"))["type"] == "ack"


async def test_connections_past_the_cap_are_closed_with_4429(alice: Any, settings: Any) -> None:
    settings.BEACON = {"MAX_CONNECTIONS_PER_USER": 2}
    async with connect(alice), connect(alice):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/")
        communicator.scope["user"] = alice
        await communicator.connect()
        closed = await communicator.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4429}
        await communicator.disconnect()
    async with connect(alice) as again:  # the places were freed
        await again.send({"op": "ping"})
        assert (await again.receive_type("pong"))["type"] == "pong"


async def test_a_refused_credential_closes_with_its_code(alice: Any, settings: Any) -> None:
    communicator, _ = await stack_client(path="/ws/?ticket=" + "n" * 40)
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4001}
    await communicator.disconnect()


def test_misconfigured_identity_settings_fail_the_system_checks(settings: Any) -> None:
    from beacon.identity.checks import check_identity

    settings.BEACON = {
        "AUTHENTICATORS": ["beacon.identity.NoSuchThing", "beacon.conf.get_config"],
        "TICKET_SECONDS": 600,
    }
    assert [m.id for m in check_identity(None)] == ["beacon.E101", "beacon.E101", "beacon.W101"]
    settings.BEACON = {}
    assert check_identity(None) == []
