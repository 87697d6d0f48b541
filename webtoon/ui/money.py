"""Prices as users read them: dollars (what fal bills) and won, with thousands separators."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _


def won(usd) -> int:
    return int((Decimal(str(usd)) * Decimal(str(settings.KRW_PER_USD))).quantize(Decimal("1")))


def price_text(usd) -> str:
    """"$0.48 · ₩672", "$2.00 · ₩2,800"."""
    value = Decimal(str(usd)).quantize(Decimal("0.01"))
    return f"${value:,.2f} · ₩{won(usd):,}"


def unit_price(setting: str, count: int = 1) -> Decimal:
    """The estimated price of `count` calls priced by a COST_PER_* setting."""
    return (Decimal(str(getattr(settings, setting))) * count).quantize(Decimal("0.01"))


def call_price(endpoint_key: str, arguments: dict, fallback_setting: str) -> Decimal:
    """What one call costs, priced like the ledger (FAL_PRICES per endpoint, per megapixel or
    per image), so a button's price is the job's own estimate."""
    from webtoon.jobs import pricing  # lazy: the jobs app imports this module's callers

    endpoint = settings.FAL_ENDPOINTS[endpoint_key]
    fallback = Decimal(str(getattr(settings, fallback_setting)))
    return pricing.estimate(endpoint, arguments, fallback)


def paid_label(label: str, usd) -> str:
    """A paid button's text: "씬 생성 · $0.03 · ₩42"."""
    return _("%(label)s · %(price)s") % {"label": label, "price": price_text(usd)}
