"""Notifications: create (row + e-mail after commit), count, mark read."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from .models import Notification

logger = logging.getLogger(__name__)

SUBJECT_MAX_CHARS = 80


def is_site_relative(link: str) -> bool:
    """True for "/path?query" on this site; False for "//host", "https://..", "javascript:".

    Whitespace and control characters are refused too: browsers drop some of them ("/\\t/x"
    becomes "//x"), and a newline in a Location header is a 500.
    """
    if not link.startswith("/") or any(ch.isspace() or ord(ch) < 32 for ch in link):
        return False
    return url_has_allowed_host_and_scheme(link, allowed_hosts=set())


def notify(
    user, *, kind: str, message: str, link: str = "", email_subject: str | None = None
) -> Notification:
    """Record a notification for `user` and e-mail it (after commit) when they have an address.

    Never raises for the e-mail: a worker that finished a training must not fail because the
    mail server is down. An unsafe `link` is dropped (logged) rather than refused, same reason.
    """
    if link and not is_site_relative(link):
        logger.warning("notification link %r is not site-relative; dropped", link)
        link = ""
    notification = Notification.objects.create(owner=user, kind=kind, message=message, link=link)
    forget_unread_count(user)  # the badge's cached count
    address = (getattr(user, "email", "") or "").strip()
    if address:
        subject = str(email_subject) if email_subject else _default_subject(message)
        body = _email_body(message, link)
        # After commit: no mail about a row a rollback took back, and the SMTP round trip
        # happens outside the transaction (SQLite holds its write lock until commit).
        transaction.on_commit(lambda: _send_email(notification.pk, address, subject, body))
    return notification


# The nav badge polls every 30 s on every open page, and every full page shows the count
# (issue 19): it is kept this long in the default cache. Every change made here forgets it
# at once (in Redis, for all processes); a row changed elsewhere (the admin), by another
# process with the per-process cache, or read by a badge inside the writer's still open
# transaction, shows within this bound: before the next poll.
UNREAD_CACHE_SECONDS = 10


def _unread_key(user) -> str:
    return f"unread-notifications:{user.pk}"


def unread_count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    key = _unread_key(user)
    count = cache.get(key)
    if count is None:
        count = Notification.objects.filter(owner=user, read_at__isnull=True).count()
        cache.set(key, count, UNREAD_CACHE_SECONDS)
    return count


def forget_unread_count(user) -> None:
    """Now, and again when the writer's transaction commits: a badge read in between would
    otherwise keep the old count for UNREAD_CACHE_SECONDS."""
    key = _unread_key(user)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def mark_all_read(user) -> int:
    """Mark every unread notification of `user` read; returns how many changed."""
    changed = Notification.objects.filter(owner=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    forget_unread_count(user)
    return changed


def mark_read(user, notification_id: int) -> Notification:
    """Mark one of `user`'s notifications read. Someone else's id is a 404, not a 403."""
    notification = get_object_or_404(Notification, pk=notification_id, owner=user)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        forget_unread_count(user)
    return notification


def _default_subject(message: str) -> str:
    # A mail subject is one line (send_mail refuses newlines); keep it short for inboxes.
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    if len(first_line) > SUBJECT_MAX_CHARS:
        first_line = first_line[: SUBJECT_MAX_CHARS - 1] + "…"
    return _("[웹툰 캐릭터 스튜디오] %(message)s") % {"message": first_line}


def _email_body(message: str, link: str) -> str:
    path = link or reverse("notifications:list")
    base = (settings.WEBTOON_PUBLIC_URL or "").rstrip("/")
    return f"{message}\n\n{base}{path}\n"


def _send_email(notification_id: int, address: str, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    except Exception:
        logger.exception("notification %s: e-mail to the owner failed", notification_id)


SITE_CAP_ALERT_KEY = "alert:site-spend-cap:{day}"


def alert_site_cap_reached(*, cap, spent) -> bool:
    """Tell staff, once per local day, that DAILY_SITE_SPEND_CAP_USD refused work: an e-mail
    to ADMINS now (not after commit: the refused request's transaction rolls back) and a log
    line. The admin banner (notifications/templatetags/alerts.py) is computed from the jobs,
    so it shows whether or not the mail went out. Once per day per shared cache (Redis in
    production; the per-process cache of the embedded default sends one per process).
    Returns whether this call sent the alert."""
    day = timezone.localdate().isoformat()
    if not cache.add(SITE_CAP_ALERT_KEY.format(day=day), True, 2 * 24 * 3600):
        return False
    logger.warning("site-wide daily spend cap reached: $%s of $%s", spent, cap)
    subject = _("사이트 전체 일일 사용 한도 도달 ($%(spent).2f / $%(cap).2f)") % {
        "spent": spent,
        "cap": cap,
    }
    body = _(
        "오늘(%(day)s) 사이트 전체의 예상 비용이 DAILY_SITE_SPEND_CAP_USD($%(cap).2f)에 "
        "도달해 새 유료 작업이 거절되고 있습니다. 지출 현황: /admin/jobs/job/spend/"
    ) % {"day": day, "cap": cap}
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception:
        logger.exception("site spend cap alert: e-mail to admins failed")
    return True
