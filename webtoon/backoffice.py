"""The back office's shared parts: thumbnails, audited actions and the report pages.

Admin classes in each app build on BackofficeAdmin; the failures and spend pages hang off
the jobs admin (/admin/jobs/job/failures/, /admin/jobs/job/spend/)."""

from __future__ import annotations

import io
from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.exceptions import BadRequest, PermissionDenied
from django.core.files.storage import default_storage
from django.db import models
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from webtoon.jobs import limits, reporting
from webtoon.media import can_access, media_url

# Served sizes (px, longest side): twice what a list or detail page draws, a few KB each.
THUMB_SIZES = (128, 256, 512)


# --- thumbnails -------------------------------------------------------------------------------
def small_jpeg(fh, size: int = THUMB_SIZES[0]) -> bytes:
    """A small JPEG of an image file (JPEGs are decoded at 1/8 scale: cheap)."""
    with Image.open(fh) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        im.thumbnail((size, size))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=80)
    return out.getvalue()


def jpeg_response(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


MAX_ID = 2**63 - 1  # BigAutoField: a larger number is no id (and PostgreSQL would raise)


def int_param(request, name: str, default: int | None = None) -> int | None:
    """A whole-number query parameter, or `default` when absent; 400 when it is not one
    (letters, or thousands of digits: int() refuses more than 4,300 and the database
    refuses anything over 64 bits)."""
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_ID):
        raise BadRequest(f"bad {name}")
    return int(raw)


def thumb_size(width: int) -> int:
    return next((s for s in THUMB_SIZES if s >= 2 * width), THUMB_SIZES[-1])


def thumbnail(request, name: str) -> HttpResponse:
    """A stored image, small (?w=128|256|512; staff only: the jobs admin wraps it in
    admin_view)."""
    size = int_param(request, "w", THUMB_SIZES[0])
    if size not in THUMB_SIZES:
        raise Http404
    if not can_access(request.user, name) or not default_storage.exists(name):
        raise Http404
    try:
        with default_storage.open(name, "rb") as fh:
            return jpeg_response(small_jpeg(fh, size))
    except (UnidentifiedImageError, OSError) as exc:
        raise Http404 from exc


def thumb(name: str | None, *, width: int = 64) -> str:
    """An <img> for a list or a detail page, linked to the full file. Browsers load the
    small copy named in srcset (a width candidate replaces src); src is the fallback."""
    if not name:
        return "-"
    size = thumb_size(width)
    return format_html(
        '<a href="{}" target="_blank"><img src="{}" srcset="{}?w={} {}w" sizes="{}px" '
        'width="{}" loading="lazy" alt=""></a>',
        media_url(name),
        media_url(name),
        reverse("admin:thumbnail", args=[name]),
        size,
        size,
        width,
        width,
    )


def owner_cell(user) -> str:
    """Username over e-mail: what support searches by (select_related the owner)."""
    if user is None:
        return "-"
    return format_html("{}<br><small>{}</small>", user.username, user.email or "")


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


# Addresses typed without a scheme are https (Django 6's default; 5.2 warns without it).
URL_INPUTS = {models.URLField: {"assume_scheme": "https"}}


class BackofficeInline(admin.TabularInline):
    formfield_overrides = URL_INPUTS


# --- audited actions --------------------------------------------------------------------------
class BackofficeAdmin(admin.ModelAdmin):
    """Actions are logged in Django's admin log and can be run from the object's page."""

    formfield_overrides = URL_INPUTS

    change_form_template = "admin/backoffice/change_form.html"
    # Actions offered as buttons on the change page (those the user may run).
    detail_actions: tuple[str, ...] = ()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        actions = self.get_actions(request)
        context = {
            "detail_actions": [(n, actions[n][2]) for n in self.detail_actions if n in actions],
            "changelist_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            ),
        }
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)

    def record(self, request, objects, message: str, *, flag: int = CHANGE) -> None:
        """One admin log entry per object: who did what, and when."""
        objects = list(objects)
        if objects:
            LogEntry.objects.log_actions(
                user_id=request.user.pk, queryset=objects, action_flag=flag, change_message=message
            )

    def record_deletion(self, request, objects, message: str) -> None:
        self.record(request, objects, message, flag=DELETION)

    def finish(self, request, objects, message: str, level=messages.INFO):
        """Tell the user what happened; an action started from an object's page returns
        to that page (when the object still exists)."""
        self.message_user(request, message, level)
        objects = list(objects)
        if request.POST.get("_from_detail") and len(objects) == 1:
            obj = objects[0]
            if self.model.objects.filter(pk=obj.pk).exists():
                return redirect(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_change", quote(obj.pk)
                )
        return None


# --- reports ----------------------------------------------------------------------------------
PERIODS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def _page(model_admin, request, template: str, title: str, **context) -> TemplateResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": title,
            "changelist_url": reverse("admin:jobs_job_changelist"),
            **context,
        },
    )


def failures_view(model_admin, request) -> TemplateResponse:
    rows = reporting.failures_by_cause()
    return _page(
        model_admin,
        request,
        "admin/jobs/job/failures.html",
        _("실패 원인별 작업 (24시간 / 7일)"),
        rows=rows,
        since_day=timezone.now() - PERIODS["24h"],
        since_week=timezone.now() - PERIODS["7d"],
    )


def spend_view(model_admin, request) -> TemplateResponse:
    period = request.GET.get("period", "7d")
    if period not in PERIODS:
        period = "7d"
    since = timezone.now() - PERIODS[period]
    owner = None
    if (owner_id := int_param(request, "user")) is not None:
        owner = get_user_model().objects.filter(pk=owner_id).first()
    users = reporting.spend_per_user(since)
    tokens = {}
    can_view_tokens = request.user.has_perm("accounts.view_apitoken")
    if can_view_tokens:
        counts = (
            get_user_model()
            .objects.filter(pk__in=[u["owner_id"] for u in users] + ([owner.pk] if owner else []))
            .annotate(
                active=Count("api_tokens", filter=Q(api_tokens__revoked_at__isnull=True)),
                total=Count("api_tokens"),
            )
            .values_list("pk", "active", "total")
        )
        tokens = {pk: {"active": a, "total": t} for pk, a, t in counts}
    cap = limits.daily_cap()
    for row in users:
        row["tokens"] = tokens.get(row["owner_id"])
        row["cap"] = cap  # beside row["today"]: today's spend against the daily cap
    title = _("지출")
    context = {
        "period": period,
        "periods": list(PERIODS),
        "since": since,
        "total": reporting.spend_total(since),
        "days": reporting.spend_per_day(since),
        "users": users,
        "owner": owner,
        "can_view_tokens": can_view_tokens,
        "cap": cap,
    }
    if owner is not None:
        today = limits.spent_today(owner)
        context["owner_today"] = today
        title = _("지출 — %(name)s 오늘 $%(today).2f / 한도 %(cap)s") % {
            "name": owner.get_username(),
            "today": today,
            "cap": f"${cap:.2f}" if cap is not None else _("없음"),
        }
        context["owner_days"] = reporting.spend_per_day(since, owner_id=owner.pk)
        context["owner_tokens"] = tokens.get(owner.pk)
        if can_view_tokens:
            context["owner_token_rows"] = list(owner.api_tokens.order_by("-created_at")[:50])
    return _page(model_admin, request, "admin/jobs/job/spend.html", title, **context)
