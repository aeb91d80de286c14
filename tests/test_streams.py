"""Stream names, group names and the policy registry (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.exceptions import StreamError
from beacon.notifications import UserStreamPolicy
from beacon.streams import (
    StreamPolicy,
    group_name,
    parse_stream,
    policy_for,
    register,
    user_stream,
)

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,23}:[A-Za-z0-9_.-]{1,64}", fullmatch=True)


@pytest.mark.parametrize(
    "name",
    [
        "user",
        "user:",
        ":1",
        "User:1",
        "a.b:1",
        "user:a b",
        "user:ü",
        "x" * 25 + ":1",
        "user:" + "1" * 65,
        7,
    ],
)
def test_malformed_names_are_refused(name: object) -> None:
    with pytest.raises(StreamError):
        parse_stream(name)  # type: ignore[arg-type]


@given(NAMES, NAMES)
def test_group_names_are_valid_and_one_to_one(a: str, b: str) -> None:
    import re

    assert re.fullmatch(r"[a-zA-Z0-9_.\-]{1,99}", group_name(a))
    assert (group_name(a) == group_name(b)) == (a == b)


def test_user_stream_accepts_users_and_ids() -> None:
    assert user_stream(SimpleNamespace(pk=7)) == user_stream(7) == "user:7"


def test_user_policy_allows_only_the_user_themself() -> None:
    policy, key = policy_for("user:7")
    assert isinstance(policy, UserStreamPolicy) and key == "7"
    assert policy.can_subscribe(SimpleNamespace(pk=7, is_authenticated=True), key)
    assert not policy.can_subscribe(SimpleNamespace(pk=8, is_authenticated=True), key)
    assert not policy.can_publish(SimpleNamespace(pk=7, is_authenticated=True), key)


def test_unknown_namespaces_have_no_policy() -> None:
    with pytest.raises(StreamError, match="no stream namespace"):
        policy_for("nosuch:1")


def test_register_works_as_a_class_decorator() -> None:
    @register("testns")
    class Open(StreamPolicy):
        def can_subscribe(self, user: object, key: str) -> bool:
            return True

    policy, key = policy_for("testns:abc")
    assert isinstance(policy, Open) and policy.can_subscribe(None, key)
