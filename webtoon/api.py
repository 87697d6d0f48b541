"""The one NinjaAPI at /api/. Every error is JSON {"detail": "..."} with a fitting status."""

import logging
from functools import wraps

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseNotAllowed
from django.urls import URLPattern
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from webtoon.auth import api_auth
from webtoon.exceptions import DomainError, InvalidInput, TooManyRequests
from webtoon.imaging import BackendError
from webtoon.middleware import bad_request_message, has_nul, nul_message, too_big_message
from webtoon.text import clean_data, is_secret_field

logger = logging.getLogger(__name__)


class WebtoonAPI(NinjaAPI):
    """NinjaAPI with two fixes: a method a path does not have is a {"detail": ...} 405 (ninja
    answers plain text that no exception handler sees), and an optional file is documented
    as a file part."""

    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        for methods in schema["paths"].values():
            for operation in methods.values():
                content = operation.get("requestBody", {}).get("content", {})
                form = content.get("multipart/form-data", {}).get("schema", {})
                for name, field in form.get("properties", {}).items():
                    form["properties"][name] = _optional_file_as_file(field)
        return schema

    def _get_urls(self):
        urls = super()._get_urls()
        for url in urls:
            if isinstance(url, URLPattern):
                url.callback = _json_not_allowed(url.callback)
        return urls


def _optional_file_as_file(field: dict) -> dict:
    """`File[UploadedFile | None]` comes out as anyOf [binary, null]. A multipart form has
    no null: leaving the part out is how a file is omitted (the field is not required), and
    a client reading anyOf sends the bytes as a plain field, which Django does not take for
    a file."""
    options = field.get("anyOf", [])
    binary = [o for o in options if o.get("format") == "binary"]
    if binary and all(o in binary or o.get("type") == "null" for o in options):
        return {k: v for k, v in field.items() if k != "anyOf"} | binary[0]
    return field


def _json_not_allowed(view):
    @wraps(view)  # keeps csrf_exempt: ninja checks CSRF in its own auth
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            response = _detail(request, _("허용되지 않는 요청 방식입니다."), 405)
            response["Allow"] = allowed
        return response

    return wrapper


class NotAnObject(ValueError):
    pass


class ObjectBodyParser(Parser):
    """Every JSON body of this API is an object. ninja would read a string or an array
    through its attributes instead (the body "AAA" made an episode titled "Aaa", str.title)."""

    def parse_body(self, request):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise NotAnObject
        if has_nul(data):
            raise InvalidInput(nul_message())
        # Line ends normalised, invisible formatting characters removed, invisible-only text
        # empty (webtoon/text.py): the same for every text field of every operation.
        return clean_data(data, skip=is_secret_field)


api = WebtoonAPI(
    title="webtoon API",
    version="1.0",
    description="사진 한 장으로 학습된 웹툰 캐릭터를 만드는 API",
    auth=api_auth,
    urls_namespace="api",
    parser=ObjectBodyParser(),
)
api.add_router("/jobs/", "webtoon.jobs.api.router")
api.add_router("/character/", "characters.api.router")
api.add_router("/character/", "characters.generation_api.router")
api.add_router("/character/", "characters.curation_api.router")
api.add_router("/character/", "characters.training_api.router")
api.add_router("/character/", "characters.backup_api.router")
api.add_router("/character/", "characters.manage_api.router")
api.add_router("/fal/", "webtoon.jobs.webhooks.router")
api.add_router("/scene/", "scenes.api.router")
api.add_router("/episode/", "episodes.api.router")


def _detail(request, message: str, status: int):
    return api.create_response(request, {"detail": message}, status=status)


# pydantic's error types in Korean, like every other message of this API (issue 15).
# Placeholders come from the error's ctx.
VALIDATION_MESSAGES = {
    "missing": "필수 항목입니다",
    "string_too_long": "최대 %(max_length)s자까지 입력할 수 있습니다",
    "string_too_short": "최소 %(min_length)s자 이상 입력해주세요",
    "too_long": "최대 %(max_length)s개까지 보낼 수 있습니다",
    "too_short": "최소 %(min_length)s개가 필요합니다",
    "greater_than_equal": "%(ge)s 이상이어야 합니다",
    "less_than_equal": "%(le)s 이하여야 합니다",
    "greater_than": "%(gt)s보다 커야 합니다",
    "less_than": "%(lt)s보다 작아야 합니다",
    "int_parsing": "정수여야 합니다",
    "int_type": "정수여야 합니다",
    "int_from_float": "정수여야 합니다",
    "float_parsing": "숫자여야 합니다",
    "float_type": "숫자여야 합니다",
    "decimal_parsing": "숫자여야 합니다",
    "bool_parsing": "true 또는 false여야 합니다",
    "bool_type": "true 또는 false여야 합니다",
    "string_type": "문자열이어야 합니다",
    "uuid_parsing": "올바른 ID 형식이 아닙니다",
    "uuid_type": "올바른 ID 형식이 아닙니다",
    "list_type": "목록이어야 합니다",
    "dict_type": "객체여야 합니다",
    "model_type": "객체여야 합니다",
    "model_attributes_type": "객체여야 합니다",
    "literal_error": "허용되는 값이 아닙니다 (%(expected)s)",
    "enum": "허용되는 값이 아닙니다 (%(expected)s)",
    "extra_forbidden": "알 수 없는 항목입니다",
    "string_pattern_mismatch": "형식이 올바르지 않습니다",
    "url_parsing": "올바른 URL이 아닙니다",
    "url_scheme": "올바른 URL이 아닙니다",
    "datetime_parsing": "날짜·시간 형식이 올바르지 않습니다",
    "date_parsing": "날짜 형식이 올바르지 않습니다",
}


def _korean_error(err: dict) -> str:
    kind = err.get("type", "")
    if kind in ("value_error", "assertion_error"):
        # Our own validators raise Korean messages; pydantic prefixes them in English.
        msg = str(err.get("msg", ""))
        return msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion")) else msg
    template = VALIDATION_MESSAGES.get(kind)
    if template is None:
        return _("값이 올바르지 않습니다")
    try:
        return _(template) % (err.get("ctx") or {})
    except (KeyError, TypeError, ValueError):  # a ctx without the placeholder's value
        return _("값이 올바르지 않습니다")


def _validation_message(errors: list[dict]) -> str:
    parts = []
    containers = ("body", "payload", "query", "form", "file", "path")
    for err in errors:
        loc = [str(p) for p in err.get("loc", []) if p not in containers]
        where = ".".join(loc)
        message = _korean_error(err)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or _("입력이 올바르지 않습니다.")


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return _detail(request, _validation_message(exc.errors), 422)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return _detail(request, _("로그인이 필요합니다."), 401)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if exc.status_code == 400 and exc.__cause__ is not None:
        # ninja's only 400: a body it could not parse. Invalid input like any other, with a
        # message in the user's language instead of ninja's English.
        if isinstance(exc.__cause__, NotAnObject):
            return _detail(request, _("요청 본문은 JSON 객체여야 합니다."), 422)
        if isinstance(exc.__cause__, InvalidInput):
            return _detail(request, str(exc.__cause__), 422)
        if isinstance(exc.__cause__, SuspiciousOperation):
            return on_suspicious(request, exc.__cause__)
        return _detail(request, _("요청 본문을 읽을 수 없습니다. 올바른 JSON을 보내주세요."), 422)
    return _detail(request, str(exc), exc.status_code)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    response = _detail(request, str(exc), exc.status_code)
    if isinstance(exc, TooManyRequests) and exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(BackendError)
def on_backend_error(request, exc: BackendError):
    # fal (or the offline store) could not be reached while we waited on it in a request,
    # e.g. hosting a training ZIP: nothing was kept, the user may simply try again.
    logger.warning("backend error during an API request: %s", exc)
    return _detail(
        request, _("이미지 서비스에 일시적인 문제가 있습니다. 잠시 후 다시 시도해주세요."), 503
    )


@api.exception_handler(SuspiciousOperation)
def on_suspicious(request, exc: SuspiciousOperation):
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE (413), too many fields, a bad header (400):
    # Django refused to read the request, so nothing was done.
    if isinstance(exc, RequestDataTooBig):
        return _detail(request, too_big_message(), 413)
    logger.warning("suspicious API request refused: %s", type(exc).__name__)
    return _detail(request, bad_request_message(), 400)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _detail(request, _("찾을 수 없습니다."), 404)


@api.exception_handler(Exception)
def on_unexpected(request, exc):
    logger.exception("unexpected API error")
    return _detail(request, _("서버 오류가 발생했습니다. 잠시 후 다시 시도해주세요."), 500)
