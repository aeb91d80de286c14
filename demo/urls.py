from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("notify/", views.send_notification, name="notify"),
    path("posts/", views.create_post, name="post-create"),
    path("posts/<int:pk>/", views.post_detail, name="post-detail"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("beacon/", include("beacon.urls")),
    path("metrics", views.metrics, name="metrics"),
    path("rooms/", include("demo.chat_urls")),
    path("pusher/demo/", views.pusher_demo, name="pusher-demo"),
    path("pusher/demo/note/", views.pusher_note, name="pusher-note"),
    path("", include("beacon.pusher.urls")),
]

# Daphne serves no static files itself: with DEBUG on (``make demo``) Django does.
urlpatterns += staticfiles_urlpatterns()
