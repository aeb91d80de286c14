"""Parsing client frames and building server frames (pure)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.exceptions import ProtocolError, PublishError
from beacon.protocol import (
    CloseCode,
    Ping,
    Publish,
    Read,
    Subscribe,
    Typing,
    Unsubscribe,
    check_event,
    error_frame,
    event_frame,
    frame_epoch,
    json_depth,
    parse_client_frame,
    subscribed_frame,
    utf8_size,
)

VALID = [
    ('{"op":"subscribe","stream":"user:7"}', Subscribe(stream="user:7")),
    (
        '{"op":"subscribe","stream":"user:7","since":4,"epoch":"ab","id":1}',
        Subscribe(stream="user:7", since=4, epoch="ab", ref=1),
    ),
    ('{"op":"unsubscribe","stream":"room:1","id":"x"}', Unsubscribe(stream="room:1", ref="x")),
    ('{"op":"ping"}', Ping()),
    ('{"op":"read","stream":"user:7","seq":3}', Read(stream="user:7", seq=3)),
    ('{"op":"read","stream":"user:7","up_to":9}', Read(stream="user:7", up_to=9)),
    (
        '{"op":"publish","stream":"room:1","type":"message","data":{"text":"hi"},"client_id":"c1"}',
        Publish(stream="room:1", type="message", data={"text": "hi"}, client_id="c1"),
    ),
    ('{"op":"typing","stream":"room:1"}', Typing(stream="room:1")),
]

INVALID = [
    ("not json", "bad_json"),
    ("[1,2]", "bad_frame"),
    ('"text"', "bad_frame"),
    ("{}", "bad_frame"),
    ('{"op":5}', "bad_frame"),
    ('{"op":"dance"}', "unknown_op"),
    ('{"op":"subscribe"}', "bad_frame"),
    ('{"op":"subscribe","stream":""}', "bad_frame"),
    ('{"op":"subscribe","stream":"user:1","since":-1}', "bad_frame"),
    ('{"op":"subscribe","stream":"user:1","since":true}', "bad_frame"),
    ('{"op":"subscribe","stream":"user:1","since":"3"}', "bad_frame"),
    ('{"op":"subscribe","stream":"user:1","epoch":7}', "bad_frame"),
    ('{"op":"ping","id":{"a":1}}', "bad_frame"),
    ('{"op":"ping","id":true}', "bad_frame"),
    ('{"op":"read","stream":"user:1"}', "bad_frame"),
    ('{"op":"read","stream":"user:1","seq":1,"up_to":2}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"message","data":[],"client_id":"c"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"error","data":{},"client_id":"c"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"m","data":{"seq":1},"client_id":"c"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"m","data":{}}', "bad_frame"),
    ("[" * 5000 + "]" * 5000, "bad_json"),  # too deep for the decoder itself
    ("[" * 10 + "]" * 10, "bad_frame"),  # shallow list: parsed, refused as not an object
    ('{"op":"ping","x":' + "[" * 5000 + "]" * 5000 + "}", "bad_json"),
    ('{"op":"ping","x":' + "[" * 17 + "]" * 17 + "}", "bad_json"),
    ("{" * 100_000, "bad_json"),
    # A lone surrogate (JSON's "\ud800" escape) in any string: not Unicode text.
    ('{"op":"subscribe","stream":"user:\\ud800"}', "bad_frame"),
    ('{"op":"subscribe","stream":"\\udfff"}', "bad_frame"),
    ('{"op":"ping","id":"a\\ud800"}', "bad_frame"),
    ('{"op":"subscribe","stream":"user:1","epoch":"\\ud800"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"message","data":{"text":"\\ud800"},'
     '"client_id":"c"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"message","data":{"text":"hi"},'
     '"client_id":"\\udbff"}', "bad_frame"),
    ('{"op":"publish","stream":"room:1","type":"\\ud800","data":{},"client_id":"c"}', "bad_frame"),
    ('{"op":"ping","\\ud800":1}', "bad_frame"),
    ('{"op":"\\ud800"}', "bad_frame"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_frames_parse_to_their_dataclass(text: str, expected: object) -> None:
    assert parse_client_frame(text) == expected


@pytest.mark.parametrize(("text", "code"), INVALID)
def test_invalid_frames_raise_protocol_errors_with_their_code(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(text)
    assert info.value.code == code


def test_errors_carry_the_frame_id_back_as_ref() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame('{"op":"subscribe","id":42}')
    assert info.value.ref == 42


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.text())
def test_any_text_parses_or_raises_a_protocol_error(text: str) -> None:
    try:
        parse_client_frame(text)
    except ProtocolError as exc:
        assert exc.code in {"bad_json", "bad_frame", "unknown_op"}


@given(
    st.dictionaries(
        st.sampled_from(["op", "stream", "since", "epoch", "id", "seq", "up_to", "data", "type"]),
        json_values | st.sampled_from(["subscribe", "ping", "read", "publish", "user:1"]),
    )
)
def test_any_json_object_parses_or_raises_a_protocol_error(obj: dict) -> None:
    with contextlib.suppress(ProtocolError):
        parse_client_frame(json.dumps(obj))


@given(
    stream=st.from_regex(r"[a-z]{1,8}:[0-9]{1,6}", fullmatch=True),
    since=st.none() | st.integers(0, 2**62),
    epoch=st.none() | st.text(max_size=16),
    ref=st.none() | st.integers(0, 2**40) | st.text(max_size=20),
)
def test_subscribe_round_trips(stream: str, since: int | None, epoch: str | None, ref) -> None:
    frame = {"op": "subscribe", "stream": stream, "since": since, "epoch": epoch, "id": ref}
    parsed = parse_client_frame(json.dumps(frame))
    assert parsed == Subscribe(stream=stream, since=since, epoch=epoch, ref=ref)


@pytest.mark.parametrize(
    ("value", "depth"), [(1, 0), ([], 1), ({"a": [1]}, 2), ([[[]]], 3), ({"a": {"b": {}}}, 3)]
)
def test_json_depth_counts_nesting(value: object, depth: int) -> None:
    assert json_depth(value, 10) == depth


def test_event_frames_are_flat_and_keep_the_guides_shape() -> None:
    text = event_frame(
        type="notification", stream="user:7", seq=3, epoch="e1", ts=12.5, data={"message": "hi"}
    )
    assert json.loads(text) == {
        "type": "notification",
        "stream": "user:7",
        "seq": 3,
        "epoch": "e1",
        "ts": 12.5,
        "message": "hi",
    }


def test_ephemeral_event_frames_have_no_seq() -> None:
    frame = json.loads(event_frame(type="typing", stream="room:1", ts=1.0, data={"user": 1}))
    assert "seq" not in frame and "epoch" not in frame


@pytest.mark.parametrize(
    ("type", "data"),
    [
        ("error", {}),
        ("close", {}),  # the end of an SSE response
        ("subscribed", {}),
        ("", {}),
        ("x" * 65, {}),
        ("note", {"seq": 1}),
        ("note", {"stream": "x"}),
        ("note", []),
    ],
)
def test_check_event_refuses_reserved_types_and_keys(type: str, data: object) -> None:
    with pytest.raises(PublishError):
        check_event(type, data)  # type: ignore[arg-type]


def test_control_frames_echo_ref_and_omit_empty_fields() -> None:
    assert json.loads(error_frame("forbidden", "no", ref=3, stream="user:2")) == {
        "type": "error",
        "code": "forbidden",
        "message": "no",
        "stream": "user:2",
        "ref": 3,
    }
    frame = json.loads(subscribed_frame(stream="user:1", epoch="e", seq=0, recovered=True))
    assert "reason" not in frame and "state" not in frame and "ref" not in frame


def test_close_codes_are_application_codes_daphne_passes_through() -> None:
    for code in CloseCode:
        assert code == 1000 or 3000 <= code <= 4999


@pytest.mark.parametrize(
    ("data", "epoch"),
    [
        ({}, "9f2c01ab"),
        ({"nested": {"epoch": "fake"}, "text": ',"epoch":"fake"'}, "9f2c01ab"),
    ],
)
def test_frame_epoch_reads_the_frames_own_epoch(data: dict, epoch: str) -> None:
    frame = event_frame(type='t,"epoch":"x', stream="user:7", seq=3, epoch=epoch, data=data, ts=1)
    assert frame_epoch(frame) == json.loads(frame)["epoch"] == epoch


def test_frame_epoch_of_an_ephemeral_frame_is_none() -> None:
    assert frame_epoch(event_frame(type="typing", stream="room:1", data={"user": 1}, ts=1)) is None
def test_a_surrogate_pair_is_one_character_and_parses() -> None:
    frame = parse_client_frame('{"op":"ping","id":"\\ud83d\\ude00"}')
    assert frame == Ping(ref="\U0001f600")


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 0), ("abc", 3), ("é", 2), ("€", 3), ("\U0001f600" * 60_000, 240_000), ("\ud800", 3)],
)
def test_frame_size_counts_utf8_bytes_not_characters(text: str, size: int) -> None:
    assert utf8_size(text) == size


# Any unicode at all, lone surrogates included (hypothesis leaves them out by default,
# and they are too rare among all code points to turn up without asking for them).
any_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.tuples(st.text(max_size=10), st.characters(categories=["Cs"]), st.text(max_size=10)).map(
        "".join
    ),
)
frame_fields = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "read", "publish", "typing"])},
    optional={
        "stream": any_text | st.sampled_from(["user:1", "room:2"]),
        "id": any_text | st.integers(0, 10),
        "epoch": any_text,
        "type": any_text | st.just("message"),
        "client_id": any_text,
        "data": st.dictionaries(any_text, any_text, max_size=3),
        "since": st.integers(0, 5),
        "up_to": st.integers(0, 5),
    },
)


@given(frame_fields)
def test_frames_with_any_unicode_parse_to_sendable_text_or_a_documented_error(obj: dict) -> None:
    """Whatever a frame holds, the answer is one the server can send as UTF-8."""
    try:
        frame = parse_client_frame(json.dumps(obj))  # ensure_ascii: surrogates as escapes
    except ProtocolError as exc:
        assert exc.code in {"bad_json", "bad_frame", "unknown_op"}
        answer = error_frame(exc.code, exc.message, ref=exc.ref, stream=exc.stream)
    else:
        stream = getattr(frame, "stream", None)
        answer = error_frame("forbidden", "no", ref=frame.ref, stream=stream)
        if isinstance(frame, Publish):
            answer += json.dumps(frame.data, ensure_ascii=False) + frame.client_id
    answer.encode("utf-8")  # raises UnicodeEncodeError for a lone surrogate
