"""The SSE wire format and the resume id (pure)."""

from __future__ import annotations

import pytest

from beacon.eventstream import (
    MAX_ID_LENGTH,
    Position,
    comment,
    encode_id,
    event,
    frame_fields,
    parse_id,
    retry,
)
from beacon.protocol import event_frame, subscribed_frame


@pytest.mark.parametrize(
    ("positions", "text"),
    [
        ({}, ""),
        ({"user:7": Position("1a2b3c4d", 42)}, "user:7@1a2b3c4d:42"),
        (
            {"user:7": Position("aa", 0), "room:x.y-z_1": Position("b-c_D", 9)},
            "user:7@aa:0,room:x.y-z_1@b-c_D:9",
        ),
    ],
)
def test_id_round_trips_every_streams_position_in_order(
    positions: dict[str, Position], text: str
) -> None:
    assert encode_id(positions) == text
    parsed = parse_id(text)
    assert parsed == positions
    assert list(parsed) == list(positions)


@pytest.mark.parametrize(
    "text",
    [
        "user:7",  # no position
        "user:7@e",  # no seq
        "user:7@e:",  # empty seq
        "user:7@:3",  # empty epoch
        "user:7@e:-1",
        "user:7@e:1x",
        "user:7@e:12345678901234567890",  # more than 19 digits
        "user:7@e:f:3",  # ':' in the epoch
        "User:7@e:3",  # not a stream name
        "user@e:3",
        "user:7@e:3,",
        ",user:7@e:3",
        "user:7@e:3\nid: x",
        "user:7@" + "e" * 65 + ":3",
    ],
)
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_id(text)


def test_an_id_longer_than_the_bound_is_refused_before_it_is_split() -> None:
    entry = "user:7@e:3"
    text = ",".join([entry] * (MAX_ID_LENGTH // len(entry) + 1))
    with pytest.raises(ValueError, match="at most"):
        parse_id(text)


def test_the_largest_request_fits_under_the_bound() -> None:
    """24 streams with the longest names, epochs and seqs still encode under the bound."""
    positions = {
        f"{'n' * 22}{i:02d}:{'k' * 64}": Position("e" * 64, 2**63 - 1) for i in range(24)
    }
    text = encode_id(positions)
    assert len(text) <= MAX_ID_LENGTH
    assert parse_id(text) == positions


def test_an_event_is_id_event_and_one_data_line() -> None:
    frame = event_frame(
        type="notification", stream="user:7", data={"m": "a\nb"}, ts=1, seq=3, epoch="e"
    )
    text = event("notification", frame, "user:7@e:3")
    assert text == f"id: user:7@e:3\nevent: notification\ndata: {frame}\n\n"
    assert text.count("\n") == 4  # the data's newline stays escaped inside the JSON


def test_an_event_name_loses_line_breaks_and_an_id_may_be_absent() -> None:
    assert event("a\r\nb", "{}") == "event: ab\ndata: {}\n\n"
    assert event("", "{}") == "event: message\ndata: {}\n\n"


def test_comment_and_retry() -> None:
    assert comment("keep-alive") == ": keep-alive\n\n"
    assert retry(2500) == "retry: 2500\n\n"


def test_frame_fields_of_durable_ephemeral_and_control_frames() -> None:
    durable = event_frame(type="build", stream="room:1", data={}, ts=1, seq=5, epoch="ab")
    assert tuple(frame_fields(durable)) == ("build", "room:1", 5, "ab")
    ephemeral = event_frame(type="typing", stream="room:1", data={}, ts=1)
    assert tuple(frame_fields(ephemeral)) == ("typing", "room:1", None, None)
    control = subscribed_frame(stream="room:1", epoch="ab", seq=3, recovered=True)
    assert frame_fields(control).type == "subscribed"
    assert frame_fields('{"type":"ping"}').stream is None
