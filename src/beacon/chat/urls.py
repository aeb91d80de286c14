"""Chat's JSON routes: ``path("chat/", include("beacon.chat.urls"))``."""

from django.urls import path

from . import views

app_name = "beacon_chat"

urlpatterns = [
    path("rooms/", views.rooms, name="rooms"),
    path("rooms/<int:room_id>/read/", views.read, name="read"),
    path("rooms/<int:room_id>/leave/", views.leave, name="leave"),
]
