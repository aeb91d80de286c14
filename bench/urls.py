from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/publish", views.publish),
    path("", include("demo.urls")),
]
