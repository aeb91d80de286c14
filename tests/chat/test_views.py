"""Chat over HTTP: history, the room list, mark read, leave, and the demo's pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from beacon.chat.messages import post_message
from beacon.chat.models import Membership, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(django_user_model: Any) -> dict[str, Any]:
    return {n: django_user_model.objects.create_user(n, password="pw") for n in ("alice", "bob")}


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_private_history_is_for_members_only(people: dict[str, Any]) -> None:
    alice, bob = people["alice"], people["bob"]
    room = Room.objects.create(name="secret", is_private=True)
    room.join(alice)
    post_message(room, alice, "for members")
    url = f"/beacon/streams/{room.stream}/events/"
    assert client_for(bob).get(url).status_code == 403
    items = client_for(alice).get(url).json()["items"]
    assert [(m["seq"], m["text"], m["author_name"]) for m in items] == [(1, "for members", "alice")]


def test_history_pages_back_by_seq(people: dict[str, Any]) -> None:
    alice = people["alice"]
    room = Room.objects.create(name="lobby")
    for n in range(5):
        post_message(room, alice, f"m{n}")
    page = client_for(alice).get(f"/beacon/streams/{room.stream}/events/?before=4&limit=2").json()
    assert [m["text"] for m in page["items"]] == ["m2", "m1"]


def test_the_room_list_counts_unread_and_offers_public_rooms(people: dict[str, Any]) -> None:
    alice, bob = people["alice"], people["bob"]
    team = Room.objects.create(name="team", is_private=True)
    team.join(alice)
    team.join(bob)
    Room.objects.create(name="lobby")
    Room.objects.create(name="hidden", is_private=True)
    for text in ("one", "two"):
        post_message(team, alice, text)
    rooms = client_for(bob).get("/rooms/api/rooms/").json()["rooms"]
    assert [(r["name"], r["member"], r["unread"]) for r in rooms] == [
        ("team", True, 2),
        ("lobby", False, 0),
    ]
    assert client_for(alice).get("/rooms/api/rooms/").json()["rooms"][0]["unread"] == 0


def test_mark_read_over_http(people: dict[str, Any], django_user_model: Any) -> None:
    alice, bob = people["alice"], people["bob"]
    team = Room.objects.create(name="team", is_private=True)
    team.join(alice)
    team.join(bob)
    for text in ("one", "two", "three"):
        post_message(team, alice, text)
    url = f"/rooms/api/rooms/{team.pk}/read/"
    answer = client_for(bob).post(url, json.dumps({"up_to": 2}), content_type="application/json")
    assert answer.json() == {"last_read": 2, "last_seq": 3, "unread": 1}
    stranger = client_for(django_user_model.objects.create_user("eve"))
    refused = stranger.post(url, json.dumps({"up_to": 2}), content_type="application/json")
    assert refused.status_code == 403


def test_a_new_member_starts_with_nothing_unread(people: dict[str, Any]) -> None:
    alice, bob = people["alice"], people["bob"]
    room = Room.objects.create(name="lobby")
    post_message(room, alice, "before bob came")
    assert room.join(bob).last_read_seq == 1


def test_leaving_takes_the_room_off_your_list(people: dict[str, Any]) -> None:
    bob = people["bob"]
    room = Room.objects.create(name="lobby")
    room.join(bob)
    assert client_for(bob).post(f"/rooms/api/rooms/{room.pk}/leave/").json() == {"left": True}
    assert not Membership.objects.filter(room=room, user=bob).exists()


def test_the_demo_room_page_is_for_those_who_may_enter(people: dict[str, Any]) -> None:
    alice, bob = people["alice"], people["bob"]
    room = Room.objects.create(name="secret", is_private=True)
    room.join(alice)
    assert client_for(bob).get(f"/rooms/{room.pk}/").status_code == 404
    page = client_for(alice).get(f"/rooms/{room.pk}/")
    assert page.status_code == 200
    assert b'role="log"' in page.content and b'aria-live="polite"' in page.content


def test_creating_a_room_in_the_demo_makes_you_its_member(people: dict[str, Any]) -> None:
    alice = people["alice"]
    answer = client_for(alice).post("/rooms/", {"name": "book club", "is_private": "on"})
    room = Room.objects.get(name="book club")
    assert answer.status_code == 302 and answer["Location"] == f"/rooms/{room.pk}/"
    assert room.is_private and room.is_member(alice)


def test_members_of_a_private_room_can_add_others(people: dict[str, Any]) -> None:
    alice, bob = people["alice"], people["bob"]
    room = Room.objects.create(name="secret", is_private=True)
    room.join(alice)
    client_for(alice).post(f"/rooms/{room.pk}/members/", {"username": "bob"})
    assert room.is_member(bob)
    refused = client_for(bob).post(f"/rooms/{room.pk}/members/", {"username": "nobody"})
    assert refused.status_code == 400


def test_only_members_of_a_private_room_can_add_members(
    people: dict[str, Any], django_user_model: Any
) -> None:
    alice, bob = people["alice"], people["bob"]
    carol = django_user_model.objects.create_user("carol", password="pw")
    secret = Room.objects.create(name="secret", is_private=True)
    secret.join(alice)
    # bob is not a member: he cannot add himself, nor anyone else.
    answer = client_for(bob).post(f"/rooms/{secret.pk}/members/", {"username": "bob"})
    assert answer.status_code == 404
    assert not secret.is_member(bob)
    # A public room's member cannot enrol other people in it (they join by entering).
    lobby = Room.objects.create(name="lobby", is_private=False)
    lobby.join(bob)
    answer = client_for(bob).post(f"/rooms/{lobby.pk}/members/", {"username": "carol"})
    assert answer.status_code == 404
    assert not lobby.is_member(carol)
