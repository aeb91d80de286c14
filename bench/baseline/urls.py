from django.urls import path

from . import views

urlpatterns = [path("bench/publish", views.publish)]
