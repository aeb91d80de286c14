"""The pure Pusher core: frames, channel names, mapping, signatures — checked against
tables and against the real ``pusher`` package (pusher-http-python) where it signs."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pusher
import pytest

from beacon.pusher import mapping, protocol, signing
from beacon.pusher.apps import AppConfigError, parse_app, parse_apps
from beacon.pusher.protocol import ChannelNameError, Kind, parse_channel

KEY, SECRET, APP_ID = "test-key", "test-secret", "100001"
SDK = pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET, host="127.0.0.1", port=1, ssl=False)


# -- channel names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "cache", "body"),
    [
        ("orders", Kind.PUBLIC, False, "orders"),
        ("cache-orders", Kind.PUBLIC, True, "orders"),
        ("private-room.42", Kind.PRIVATE, False, "room.42"),
        ("private-cache-room.42", Kind.PRIVATE, True, "room.42"),
        ("presence-room.42", Kind.PRESENCE, False, "room.42"),
        ("presence-cache-x", Kind.PRESENCE, True, "x"),
        ("private-encrypted-x", Kind.ENCRYPTED, False, "x"),
        ("#server-to-user-7", Kind.USER, False, "7"),
        ("a=b@c,d.e;f_g-h", Kind.PUBLIC, False, "a=b@c,d.e;f_g-h"),
        ("x" * 200, Kind.PUBLIC, False, "x" * 200),
    ],
)
def test_channel_kinds(name: str, kind: Kind, cache: bool, body: str) -> None:
    channel = parse_channel(name)
    assert (channel.kind, channel.cache, channel.body) == (kind, cache, body)


@pytest.mark.parametrize(
    "name", ["", "x" * 201, "has space", "slash/", "uni\u00e9", "private-", "#other", 7, None]
)
def test_bad_channel_names_are_refused(name: Any) -> None:
    with pytest.raises(ChannelNameError):
        parse_channel(name)


def test_channel_rule_agrees_with_the_sdk() -> None:
    """What the SDK's validate_channel takes, parse_channel takes, and the reverse."""
    from pusher.util import validate_channel

    for name in ["ok", "private-a.b", "a=b", "x" * 200, "#server-to-user-1"]:
        validate_channel(name)
        parse_channel(name)
    for name in ["x" * 201, "a b", "a/b"]:
        with pytest.raises(ValueError):
            validate_channel(name)
        with pytest.raises(ChannelNameError):
            parse_channel(name)


# -- handshake and frames --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"protocol": ["7"]}, None),
        ({"protocol": ["5"]}, None),
        ({}, protocol.CloseCode.NO_PROTOCOL),
        ({"protocol": [""]}, protocol.CloseCode.NO_PROTOCOL),
        ({"protocol": ["seven"]}, protocol.CloseCode.INVALID_VERSION),
        ({"protocol": ["4"]}, protocol.CloseCode.UNSUPPORTED_PROTOCOL),
        ({"protocol": ["8"]}, protocol.CloseCode.UNSUPPORTED_PROTOCOL),
    ],
)
def test_protocol_versions(query: dict[str, list[str]], code: Any) -> None:
    assert protocol.check_protocol(query) == code


def test_close_codes_are_in_the_ranges_pusher_js_acts_on() -> None:
    final = {c for c in protocol.CloseCode if 4000 <= c < 4100}
    assert protocol.CloseCode.APP_NOT_FOUND in final
    assert all(4000 <= c < 4300 for c in protocol.CloseCode)
    assert all(4300 <= c < 4400 for c in protocol.ErrorCode)


def test_every_beacon_close_reads_as_a_pusher_code() -> None:
    """What the outbox, the hub's drain and the identity registry close with: only an
    ended identity is final (40xx) for pusher-js; the rest reconnect (41xx, 42xx)."""
    from beacon.protocol import CloseCode as Beacon
    from beacon.pusher.consumer import CLOSES

    final = {Beacon.UNAUTHENTICATED, protocol.CloseCode.UNAUTHORIZED}
    for code in (
        Beacon.SERVER_RESTART,
        Beacon.TOO_SLOW,
        Beacon.INTERNAL_ERROR,
        Beacon.CREDENTIAL_EXPIRED,
        Beacon.TOO_MANY_CONNECTIONS,
        *final,
    ):
        pusher_code, message = CLOSES[code]
        assert message
        assert (4000 <= pusher_code < 4100) == (code in final), code
    assert CLOSES[Beacon.SERVER_RESTART][0] == protocol.CloseCode.OVER_CAPACITY


def test_connection_established_has_data_as_a_json_string() -> None:
    socket_id = protocol.new_socket_id()
    assert protocol.SOCKET_ID.fullmatch(socket_id)
    frame = json.loads(protocol.connection_established(socket_id, 120))
    assert frame["event"] == "pusher:connection_established"
    assert json.loads(frame["data"]) == {"socket_id": socket_id, "activity_timeout": 120}


def test_subscription_succeeded_presence() -> None:
    members = {"1": {"name": "alice"}, "2": {"name": "bob"}}
    frame = json.loads(
        protocol.subscription_succeeded("presence-x", protocol.presence_data(members))
    )
    assert frame["channel"] == "presence-x"
    assert json.loads(frame["data"]) == {
        "presence": {"ids": ["1", "2"], "hash": members, "count": 2}
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "valid JSON"),
        ("[1]", "JSON object"),
        ('{"data": {}}', "event"),
        ('{"event": "x", "channel": 5}', "channel"),
        ('{"event": "x", "data": ' + "[" * 20 + "]" * 20 + "}", "deeper"),
    ],
)
def test_bad_client_frames(text: str, error: str) -> None:
    with pytest.raises(protocol.FrameError, match=error):
        protocol.parse_frame(text)


def test_subscribe_data_may_be_an_object_or_an_encoded_string() -> None:
    a = protocol.parse_frame('{"event":"pusher:subscribe","data":{"channel":"x"}}')
    b = protocol.parse_frame('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"x\\"}"}')
    assert protocol.object_data(a) == protocol.object_data(b) == {"channel": "x"}
    with pytest.raises(protocol.FrameError):
        protocol.object_data(protocol.parse_frame('{"event":"pusher:subscribe","data":"x"}'))


# -- signatures, against the SDK -------------------------------------------------------


def test_private_channel_auth_matches_the_sdk() -> None:
    expected = SDK.authenticate(channel="private-room.1", socket_id="123.456")
    assert signing.channel_auth(KEY, SECRET, "123.456", "private-room.1") == expected["auth"]
    mine = signing.channel_auth(KEY, SECRET, "123.456", "private-room.1")
    other = signing.channel_auth(KEY, SECRET, "123.457", "private-room.1")
    assert signing.check_auth(expected["auth"], mine)
    assert not signing.check_auth(expected["auth"], other)


def test_presence_channel_auth_matches_the_sdk() -> None:
    expected = SDK.authenticate(
        channel="presence-room.1",
        socket_id="1.2",
        custom_data={"user_id": "7", "user_info": {"n": "a"}},
    )
    mine = signing.channel_auth(KEY, SECRET, "1.2", "presence-room.1", expected["channel_data"])
    assert mine == expected["auth"]


def test_user_auth_matches_the_sdk() -> None:
    expected = SDK.authenticate_user("1.2", {"id": "7", "user_info": {"name": "alice"}})
    assert signing.user_auth(KEY, SECRET, "1.2", expected["user_data"]) == expected["auth"]


@pytest.mark.parametrize("auth", [None, 5, "", "x" * 600, "test-key:00"])
def test_check_auth_refuses_junk(auth: Any) -> None:
    assert not signing.check_auth(auth, signing.channel_auth(KEY, SECRET, "1.2", "private-x"))


def _sdk_request(request: Any) -> tuple[str, str, dict[str, str], bytes]:
    parts = urlsplit(request.url)
    return request.method, parts.path, dict(parse_qsl(parts.query)), request.body


class _App:
    secret = SECRET


def _verify(
    method: str, path: str, params: dict[str, str], body: bytes, now: float | None = None
) -> Any:
    return signing.verify_request(
        method,
        path,
        params,
        body,
        lambda key: _App() if key == KEY else None,
        lambda app: app.secret,
        time.time() if now is None else now,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: SDK._pusher_client.trigger.make_request(["a", "private-b"], "ev", {"x": 1}, "1.2"),
        lambda: SDK._pusher_client.trigger_batch.make_request(
            [{"channel": "a", "name": "ev", "data": "d"}]
        ),
        lambda: SDK._pusher_client.channels_info.make_request("presence-", ["user_count"]),
        lambda: SDK._pusher_client.channel_info.make_request("a", ["subscription_count"]),
        lambda: SDK._pusher_client.users_info.make_request("presence-a"),
        lambda: SDK._pusher_client.terminate_user_connections.make_request("7"),
    ],
)
def test_sdk_signed_requests_verify(make: Any) -> None:
    method, path, params, body = _sdk_request(make())
    assert isinstance(_verify(method, path, params, body), _App)


def test_tampering_is_refused() -> None:
    method, path, params, body = _sdk_request(
        SDK._pusher_client.trigger.make_request(["a"], "ev", "data")
    )
    for changed in (
        (method, path + "x", params, body),
        (method, path, {**params, "auth_signature": "0" * 64}, body),
        (method, path, params, body + b" "),
        (method, path, {**params, "extra": "1"}, body),
        (method, path, {**params, "auth_key": "other"}, body),
        (method, path, {**params, "auth_version": "2.0"}, body),
        ("GET", path, params, body),
    ):
        with pytest.raises(signing.ApiError) as info:
            _verify(*changed)
        assert info.value.status == 401


@pytest.mark.parametrize(("skew", "ok"), [(-590, True), (590, True), (-610, False), (610, False)])
def test_timestamp_window(skew: int, ok: bool) -> None:
    method, path, params, body = _sdk_request(
        SDK._pusher_client.trigger.make_request(["a"], "ev", "data")
    )
    now = int(params["auth_timestamp"]) + skew
    if ok:
        _verify(method, path, params, body, now)
    else:
        with pytest.raises(signing.ApiError, match="Timestamp expired"):
            _verify(method, path, params, body, now)


@pytest.mark.parametrize(
    "missing", ["auth_key", "auth_timestamp", "auth_version", "auth_signature"]
)
def test_missing_auth_params(missing: str) -> None:
    method, path, params, body = _sdk_request(
        SDK._pusher_client.channels_info.make_request()
    )
    del params[missing]
    with pytest.raises(signing.ApiError, match=missing):
        _verify(method, path, params, body)


def test_sign_request_round_trips() -> None:
    body = b'{"name":"x"}'
    params = signing.sign_request(KEY, SECRET, "POST", "/apps/1/events", {}, body, time.time())
    assert params["body_md5"] == hashlib.md5(body).hexdigest()
    _verify("POST", "/apps/1/events", params, body)


def test_webhooks_validate_with_the_sdk() -> None:
    body = signing.webhook_body(
        [{"name": "channel_occupied", "channel": "x"}], int(time.time() * 1000)
    )
    headers = signing.webhook_headers(KEY, SECRET, body)
    result = SDK.validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], body)
    assert result is not None and result["events"] == [{"name": "channel_occupied", "channel": "x"}]
    assert SDK.validate_webhook(KEY, headers["X-Pusher-Signature"], body + b" ") is None


# -- mapping ---------------------------------------------------------------------------


RULES = mapping.compile_rules(mapping.DEFAULT_RULES)


def _stream(name: str, registered: set[str] = {"room", "user"}) -> str | None:  # noqa: B006
    return mapping.stream_for(parse_channel(name), RULES, registered.__contains__, "pusher")


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        ("#server-to-user-7", "user:7"),
        ("private-room.42", "room:42"),
        ("presence-room.42", "room:42"),
        ("private-cache-room.42", "room:42"),
        ("room.42", "room:42"),
        ("private-user.7", "user:7"),
        ("orders", "pusher:orders"),
        ("private-orders", "pusher:private-orders"),
        ("cache-orders", "pusher:cache-orders"),
        ("private-project.5", "pusher:private-project.5"),  # no "project" policy
        ("private-pusher.5", "pusher:private-pusher.5"),  # the fallback is not a rule target
    ],
)
def test_default_mapping(name: str, stream: str) -> None:
    assert _stream(name) == stream


def test_names_that_are_no_stream_key_are_hashed_apart() -> None:
    a, b = _stream("a=b"), _stream("private-a=b")
    assert a is not None and b is not None and a != b
    assert a.startswith("pusher:_") and b.startswith("pusher:private-_")
    assert len(a.split(":", 1)[1]) <= 64 and len(b.split(":", 1)[1]) <= 64
    assert _stream("x" * 65) != _stream("x" * 66)
    # A verbatim name can never be a hashed one: a body starting "_" is hashed too.
    hashed = a.split(":", 1)[1]
    assert _stream(hashed) != a
    assert mapping.fallback_kind(b.split(":", 1)[1]) is Kind.PRIVATE
    assert mapping.fallback_kind(a.split(":", 1)[1]) is Kind.PUBLIC


def test_custom_rules() -> None:
    rules = mapping.compile_rules([(r"App\.Models\.User\.(?P<id>\d+)", "user:{id}")])
    stream = mapping.stream_for(
        parse_channel("private-App.Models.User.7"), rules, {"user"}.__contains__, "pusher"
    )
    assert stream == "user:7"


def test_server_to_user_id_that_is_no_stream_key() -> None:
    assert _stream("#server-to-user-a=b") is None


def test_beacon_frames_read_as_pusher_events() -> None:
    published = json.dumps(
        {"type": "message", "stream": "room:1", "seq": 3, "epoch": "e", "ts": 1.5, "text": "hi"}
    )
    event = mapping.read_frame(published)
    assert event is not None and event.event == "message" and event.channel is None
    assert json.loads(event.data) == {"text": "hi"}
    through_pusher = json.dumps(
        {
            "type": "order",
            "stream": "pusher:orders",
            "seq": 1,
            "ts": 1.0,
            **mapping.beacon_data("order", "orders", '{"id":1}', exclude="1.2"),
        }
    )
    event = mapping.read_frame(through_pusher)
    assert event is not None
    assert (event.event, event.data) == ("order", '{"id":1}')
    assert (event.channel, event.exclude) == ("orders", "1.2")
    assert mapping.read_frame('{"type":"ping"}') is None
    assert mapping.read_frame("nonsense") is None


@pytest.mark.parametrize(
    ("name", "expected"), [("ok", "ok"), ("ping", "pusher"), ("x" * 65, "pusher")]
)
def test_beacon_type(name: str, expected: str) -> None:
    assert mapping.beacon_type(name) == expected


# -- apps --------------------------------------------------------------------------------


def test_apps_parse() -> None:
    apps = parse_apps([{"id": "1", "key": "k", "secret": "s", "client_events": True}])
    assert apps.by_key["k"].client_events and apps.by_id["1"].namespace == "pusher"


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "abc", "key": "k", "secret": "s"},
        {"id": "1", "key": "bad key", "secret": "s"},
        {"id": "1", "key": "k", "secret": ""},
        {"id": "1", "key": "k", "secret": "s", "typo": 1},
        {"id": "1", "key": "k", "secret": "s", "channels": [["(", "x"]]},
        {"id": "1", "key": "k", "secret": "s", "namespace": "Bad"},
    ],
)
def test_bad_apps(raw: dict[str, Any]) -> None:
    with pytest.raises(AppConfigError):
        parse_app(raw)


def test_apps_must_be_apart() -> None:
    with pytest.raises(AppConfigError):
        parse_apps([{"id": "1", "key": "k", "secret": "s"}, {"id": "2", "key": "k", "secret": "s"}])
    with pytest.raises(AppConfigError):
        parse_apps([{"id": "1", "key": "a", "secret": "s"}, {"id": "2", "key": "b", "secret": "s"}])
