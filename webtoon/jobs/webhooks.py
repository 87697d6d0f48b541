"""fal's "request finished" call (/api/fal/webhook), next to the engine that gives fal its URL
(services.webhook_url). Mounted by webtoon/api.py."""

import logging

from django.conf import settings
from django.http.request import RawPostDataException
from django.utils.translation import gettext as _
from ninja import Router, Status

from webtoon.imaging import webhooks
from webtoon.schemas import Detail

from . import services as jobs
from .models import RemoteCall

logger = logging.getLogger(__name__)

router = Router(tags=["fal"])

# fal's signature headers and its JSON body, documented so that clients (and the API fuzz)
# know what is read; anything else is a 400.
WEBHOOK_REQUEST = {
    "parameters": [
        {
            "in": "header",
            "name": f"X-Fal-Webhook-{part}",
            "required": False,
            "schema": {"type": "string"},
        }
        for part in ("Request-Id", "User-Id", "Timestamp", "Signature")
    ],
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
}


@router.post(
    "/webhook", auth=None, response={200: Detail, 400: Detail, 413: Detail},
    openapi_extra=WEBHOOK_REQUEST,
)
def fal_webhook(request):
    """fal's "request finished" call. Only a valid signature counts, and even then it only
    makes us look sooner: the result is always read from fal by request id, never taken from
    the webhook body."""
    try:
        body = request.body
    except RawPostDataException:  # a form post, already parsed: fal only sends JSON
        return Status(400, {"detail": _("알 수 없는 형식입니다.")})
    # Headers first: a request that cannot be signed never makes us fetch fal's keys.
    if not webhooks.has_signature_headers(request.headers) or not webhooks.verify_signature(
        request.headers, body, webhooks.jwks_keys(), leeway=settings.FAL_WEBHOOK_LEEWAY_SECONDS
    ):
        logger.warning("fal webhook with a bad or missing signature ignored")
        return Status(400, {"detail": _("서명이 올바르지 않습니다.")})
    try:
        event = webhooks.parse_webhook(body)
    except ValueError:
        return Status(400, {"detail": _("알 수 없는 형식입니다.")})
    call = RemoteCall.objects.select_related("job").filter(request_id=event.request_id).first()
    if call is not None:
        jobs.poke(call.job)
    elif signed_call := request.GET.get("call"):
        # A request we never heard back about (its submit answer was lost): the URL we gave
        # fal names our call, so it is adopted instead of failing or being paid twice.
        jobs.adopt(event.request_id, signed_call)
    return {"detail": "ok"}
