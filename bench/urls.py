"""The app's URLconf plus /bench/ping: the smallest Django JSON view, the baseline the
status endpoint is compared with in the same run (same server, middleware and settings)."""

from django.http import JsonResponse
from django.urls import include, path


def ping(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/ping", ping),
    path("", include("webtoon.urls")),
]
