"""The staff banner while fal refuses the account (webtoon/jobs/account.py)."""

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from webtoon.jobs import account

register = template.Library()


@register.simple_tag
def fal_account_alert() -> str:
    state = account.paused()
    if state is None:
        return ""
    return format_html(
        '<div class="staff-offline staff-alert" role="alert" data-testid="fal-account-paused">'
        "⛔ {} <br><small>{}</small></div>",
        _(
            "fal이 계정을 거절하고 있어 모든 생성이 멈췄습니다 (%(since)s부터, HTTP %(code)s). "
            "사용자 작업은 대기 중이며, fal이 다시 받아들이면 자동으로 이어집니다."
        )
        % {"since": state.paused_at.strftime("%Y-%m-%d %H:%M"), "code": state.status_code or "-"},
        state.reason[:300],
    )
