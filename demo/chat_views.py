"""The demo's chat pages: the room list (``/rooms/``) and a room (``/rooms/<id>/``).

The pages render the frame; everything live (history, messages, presence, typing,
unread counts) is ``demo/static/demo/chat-room.js`` and ``chat-list.js`` on Beacon's
JavaScript client, speaking the protocol in ``docs/chat.md``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from beacon.chat.conf import get_chat_config
from beacon.chat.models import Membership, Room
from beacon.chat.policy import find_room, may_enter
from beacon.chat.readstate import room_list


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["name", "is_private"]
        labels = {"name": "Room name", "is_private": "Private (members only)"}


class MemberForm(forms.Form):
    username = forms.CharField(label="Add a member (username)", max_length=150)

    def clean_username(self) -> Any:
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise forms.ValidationError(f"There is no user called {name!r}.")
        return user


def _rooms(request: HttpRequest, form: RoomForm | None = None, status: int = 200) -> HttpResponse:
    mine = room_list(request.user)
    joined = {entry["room"] for entry in mine}
    public = Room.objects.filter(is_private=False).exclude(pk__in=joined)
    context = {"mine": mine, "public": public, "form": form or RoomForm()}
    return render(request, "demo/rooms.html", context, status=status)


@login_required
def rooms(request: HttpRequest) -> HttpResponse:
    """Your rooms with live unread counts; public rooms to join; a form for a new room."""
    if request.method != "POST":
        return _rooms(request)
    form = RoomForm(request.POST)
    if not form.is_valid():
        return _rooms(request, form, status=400)
    with transaction.atomic():
        room = form.save(commit=False)
        room.created_by = request.user
        room.save()
        room.join(request.user)
    return redirect("room", room_id=room.pk)


@login_required
def room(request: HttpRequest, room_id: int) -> HttpResponse:
    found = find_room(str(room_id))
    if found is None or not may_enter(found, request.user):
        raise Http404("No such room, or it is private.")
    return render(request, "demo/room.html", _room_context(request, found, MemberForm()))


def _room_context(request: HttpRequest, found: Room, member_form: MemberForm) -> dict[str, Any]:
    members = (
        Membership.objects.filter(room=found).select_related("user").order_by("user__username")
    )
    return {
        "room": found,
        "members": [m.user for m in members] if found.is_private else None,
        "member_form": member_form,
        "history_url": reverse("beacon:stream-events", args=[found.stream]),
        "read_url": reverse("beacon_chat:read", args=[found.pk]),
        "max_length": get_chat_config()["MAX_MESSAGE_LENGTH"],
    }


@login_required
@require_POST
def add_member(request: HttpRequest, room_id: int) -> HttpResponse:
    """Members of a private room may add others to it; nobody adds people to a public
    room (they join it themselves by entering it)."""
    found = find_room(str(room_id))
    if found is None or not found.is_private or not found.is_member(request.user):
        raise Http404("No such private room, or you are not a member.")
    form = MemberForm(request.POST)
    if not form.is_valid():
        return render(request, "demo/room.html", _room_context(request, found, form), status=400)
    user = form.cleaned_data["username"]
    found.join(user)
    messages.success(request, f"{user.get_username()} is now a member of {found.name}.")
    return redirect("room", room_id=found.pk)
