import mimetypes

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from webtoon.media import can_access


@login_required
def home(request):
    return render(request, "home.html")


@require_GET
def media(request, name: str):
    """Serve a stored file to its owner only; everyone else gets 404 (not 403: no oracle)."""
    if not can_access(request.user, name) or not default_storage.exists(name):
        raise Http404
    if settings.AWS_STORAGE_BUCKET_NAME:
        return HttpResponseRedirect(default_storage.url(name))  # short-lived presigned URL
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@csrf_exempt  # an unknown API path has nothing to protect; answer JSON, not an HTML 403
def api_not_found(request, rest: str = ""):
    return JsonResponse({"detail": _("찾을 수 없습니다.")}, status=404)
