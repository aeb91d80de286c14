"""Chat's HTTP JSON endpoints: the room list with unread counts, mark read, leave.

History needs no endpoint of its own: ``GET beacon/streams/room:{id}/events/?before=SEQ``
pages back through a room (the room policy decides who may). Errors are
``{"error": code, "message": …}``, as in ``beacon.views``.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from ..identity.limits import user_rate_limited
from ..views import int_field, json_body, json_error, signed_in
from .models import Membership, Room, room_stream
from .policy import enter, find_room, may_enter
from .readstate import last_seq, mark_read, room_entry, room_list


@require_GET
@signed_in
def rooms(request: HttpRequest) -> HttpResponse:
    """Rooms the user can see: their own (with unread counts), then public ones to join."""
    mine = room_list(request.user)
    joined = {entry["room"] for entry in mine}
    others = [
        {**room_entry(room, seq=0, last_read=0), "member": False}
        for room in Room.objects.filter(is_private=False).exclude(pk__in=joined)
    ]
    return JsonResponse(
        {
            "stream": f"rooms:{request.user.pk}",
            "rooms": [{**entry, "member": True} for entry in mine] + others,
        }
    )


@require_POST
@signed_in
@user_rate_limited
def read(request: HttpRequest, room_id: int) -> HttpResponse:
    """Mark read up to a seq: body ``{"up_to": N}``; returns the position and unread count."""
    up_to = int_field(json_body(request), "up_to")
    if up_to is None:
        return json_error("bad_request", "give 'up_to', a non-negative integer", 400)
    room = enter(str(room_id), request.user)
    if room is None:
        return json_error("forbidden", f"not allowed to mark read {room_stream(room_id)}", 403)
    mark_read(room, request.user, up_to)
    membership = Membership.objects.get(room=room, user=request.user)  # type: ignore[misc]  # signed_in: a User
    seq = last_seq(room.pk)
    return JsonResponse(
        {
            "last_read": membership.last_read_seq,
            "last_seq": seq,
            "unread": max(0, seq - membership.last_read_seq),
        }
    )


@require_POST
@signed_in
def leave(request: HttpRequest, room_id: int) -> HttpResponse:
    """Stop being a member: the room leaves your list (a private one you cannot re-enter)."""
    room = find_room(str(room_id))
    if not may_enter(room, request.user):
        return json_error("forbidden", f"not a member of {room_stream(room_id)}", 403)
    deleted, _ = Membership.objects.filter(room=room, user=request.user).delete()  # type: ignore[misc]  # signed_in: a User
    return JsonResponse({"left": bool(deleted)})
