"""Request hygiene shared by pages and the API."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _

from webtoon.text import clean_text, is_secret_field


def has_nul(value) -> bool:
    """A NUL character anywhere in a (nested) value: PostgreSQL text cannot hold one, and no
    field of ours means it, so such input is refused before it reaches a query."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def nul_message() -> str:
    return _("입력에 허용되지 않는 문자(NUL)가 있습니다.")


def too_big_message() -> str:
    return _("요청이 너무 큽니다.")


def bad_request_message() -> str:
    return _("요청을 처리할 수 없습니다. 필드나 매개변수가 너무 많거나 형식이 잘못되었습니다.")


def refusal(request, message: str, status: int) -> HttpResponse:
    """A 4xx the way the caller reads it: JSON {"detail"} on the API, plain text on pages."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RejectNulMiddleware:
    """Query strings and form fields with a NUL character get a clear 4xx instead of a
    database error (a 500 on PostgreSQL). JSON bodies are checked by the API's parser.

    Input Django refuses to parse (more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters, a form
    over DATA_UPLOAD_MAX_MEMORY_SIZE: the SuspiciousOperation family) is answered here too,
    as JSON on the API: left alone, a query string became Django's HTML 400, and a form read
    as empty, so the view answered something misleading ("consent required")."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            fields = [request.GET]
            if request.method == "POST" and request.content_type in FORM_TYPES:
                try:
                    fields.append(request.POST)  # what CSRF and the views read anyway
                except SuspiciousOperation:
                    raise
                except Exception:  # noqa: BLE001 - a broken form: the view answers it as before
                    pass
        except RequestDataTooBig:
            return refusal(request, too_big_message(), 413)
        except SuspiciousOperation:
            return refusal(request, bad_request_message(), 400)
        if any(has_nul(key) or has_nul(data.getlist(key)) for data in fields for key in data):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": nul_message()}, status=422)
            return HttpResponseBadRequest(nul_message(), content_type="text/plain; charset=utf-8")
        if len(fields) > 1:
            request.POST = clean_form(fields[1])
        return self.get_response(request)


def clean_form(data):
    """The form with webtoon.text.clean_text applied to every field but secrets: line ends
    normalised, invisible formatting characters gone, invisible-only values empty."""
    cleaned = data.copy()
    for key in cleaned:
        if not is_secret_field(key):
            cleaned.setlist(key, [clean_text(v) for v in cleaned.getlist(key)])
    cleaned._mutable = False
    return cleaned


class TooManyRequestsMiddleware:
    """A per-user limit refused something on a page whose view does not show the message
    itself (e.g. the editor's panel preview image): a 429 with the Korean message and
    Retry-After, instead of a server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from webtoon.exceptions import TooManyRequests

        if not isinstance(exception, TooManyRequests):
            return None
        response = refusal(request, str(exception), 429)
        if exception.retry_after:
            response["Retry-After"] = str(exception.retry_after)
        return response
