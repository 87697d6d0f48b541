import mimetypes

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpResponseRedirect,
    HttpResponseServerError,
    JsonResponse,
)
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


# --- error pages: Korean, styled, with a way back ---------------------------------------------
ERROR_PAGES = {
    403: (
        "접근할 수 없는 페이지입니다",
        "이 페이지를 볼 권한이 없습니다. 로그인한 계정을 확인해주세요.",
    ),
    404: (
        "페이지를 찾을 수 없습니다",
        "주소가 바뀌었거나 삭제된 페이지입니다. 아래에서 이동해주세요.",
    ),
    500: (
        "일시적인 오류가 발생했습니다",
        "잠시 후 다시 시도해주세요. 작업 중이던 캐릭터와 이미지는 안전하게 보관되어 있습니다.",
    ),
}


def _error_page(request, status: int, text: str = ""):
    title, default_text = ERROR_PAGES[status]
    text = text or default_text
    context = {"error_status": status, "error_title": _(title), "error_text": _(text)}
    return render(request, "error.html", context, status=status)


def page_not_found(request, exception=None):
    return _error_page(request, 404)


def permission_denied(request, exception=None):
    return _error_page(request, 403)


def server_error(request):
    try:
        return _error_page(request, 500)
    except Exception:  # the page itself failed (e.g. the database is down): plain text
        return HttpResponseServerError(_(ERROR_PAGES[500][1]), content_type="text/plain")


def csrf_failure(request, reason=""):
    # Usually a form left open past its session: say how to get going again.
    return _error_page(request, 403, CSRF_TEXT)


CSRF_TEXT = "보안 확인이 만료되었습니다. 페이지를 새로 고친 뒤 다시 시도해주세요."
