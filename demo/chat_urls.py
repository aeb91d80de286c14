"""The demo's chat pages and chat's JSON API, under ``rooms/``."""

from django.urls import include, path

from . import chat_views

urlpatterns = [
    path("", chat_views.rooms, name="rooms"),
    path("<int:room_id>/", chat_views.room, name="room"),
    path("<int:room_id>/members/", chat_views.add_member, name="room-add-member"),
    path("api/", include("beacon.chat.urls")),
]
