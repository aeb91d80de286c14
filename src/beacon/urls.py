"""HTTP routes: ``path("beacon/", include("beacon.urls"))``."""

from django.urls import path

from . import views

app_name = "beacon"

urlpatterns = [
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("streams/<str:stream>/events/", views.stream_events, name="stream-events"),
    path("tickets/", views.tickets, name="tickets"),
    path("healthz", views.healthz, name="healthz"),
]
