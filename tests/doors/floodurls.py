"""The demo's URLs plus ``/test/flood``: publish many big events inside the server.

``/test/flood?stream=S&count=N&size=B`` appends ``N`` events of about ``B`` bytes to
``S`` in one transaction, so their deliveries reach the process's hub at once (the
in-memory layer delivers in the publishing process only).
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from beacon.publishing import publish
from demo.urls import urlpatterns as demo_urlpatterns


def flood(request: HttpRequest) -> JsonResponse:
    stream = request.GET["stream"]
    count, size = int(request.GET["count"]), int(request.GET["size"])
    with transaction.atomic():
        for i in range(count):
            publish(stream, "flood", {"i": i, "pad": "x" * size})
    return JsonResponse({"published": count})


urlpatterns = [path("test/flood", flood), *demo_urlpatterns]
