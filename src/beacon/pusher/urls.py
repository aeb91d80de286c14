"""HTTP routes of the Pusher door, at the site's root (the server SDKs call ``/apps/…``)::

    path("", include("beacon.pusher.urls")),
"""

from django.urls import path

from . import views

app_name = "beacon-pusher"

urlpatterns = [
    path("pusher/auth", views.channel_auth_view, name="auth"),
    path("broadcasting/auth", views.channel_auth_view, name="broadcasting-auth"),
    path("pusher/user-auth", views.user_auth_view, name="user-auth"),
    path("apps/<str:app_id>/events", views.events, name="events"),
    path("apps/<str:app_id>/batch_events", views.batch_events, name="batch-events"),
    path("apps/<str:app_id>/channels", views.channels, name="channels"),
    path("apps/<str:app_id>/channels/<str:name>", views.channel, name="channel"),
    path("apps/<str:app_id>/channels/<str:name>/users", views.channel_users, name="users"),
    path(
        "apps/<str:app_id>/users/<str:user_id>/terminate_connections",
        views.terminate_connections,
        name="terminate",
    ),
    # pusher-http-python 3.3 sends terminate_user_connections without the app prefix.
    path(
        "users/<str:user_id>/terminate_connections",
        views.terminate_connections,
        name="terminate-bare",
    ),
]
