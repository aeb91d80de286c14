from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/publish", views.publish),
    path("bench/objects", views.objects),
    path("", include("demo.urls")),
]
