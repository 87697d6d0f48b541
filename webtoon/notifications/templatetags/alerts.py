"""The back office's site-wide alerts (admin/base_site.html)."""

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from webtoon.jobs import limits

register = template.Library()


@register.simple_tag(takes_context=True)
def site_spend_alert(context) -> str:
    """A banner on every admin page while today's spend of all users has reached
    DAILY_SITE_SPEND_CAP_USD (computed from the jobs: one indexed sum, staff pages only)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    cap = limits.site_daily_cap()
    if cap is None or not getattr(user, "is_staff", False):
        return ""
    spent = limits.spent_today_site()
    if spent < cap:
        return ""
    text = _(
        "사이트 전체 일일 사용 한도에 도달했습니다: 오늘 $%(spent).2f / 한도 $%(cap).2f. "
        "내일까지 새 유료 작업이 거절됩니다 (DAILY_SITE_SPEND_CAP_USD)."
    ) % {"spent": spent, "cap": cap}
    return format_html(
        '<div class="staff-offline" role="alert" data-testid="site-cap-alert">⚠️ {}</div>', text
    )
