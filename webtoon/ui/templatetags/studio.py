from django import template

from webtoon.ui import money, sizes

register = template.Library()


@register.filter
def price(usd) -> str:
    """{{ cost|price }} → "$0.48 · ₩672"."""
    return money.price_text(usd or 0)


@register.filter
def krw(usd) -> str:
    """{{ cost|krw }} → "₩2,800"."""
    return f"₩{money.won(usd or 0):,}"


@register.filter
def size_label(key) -> str:
    return sizes.size_label(key)


@register.simple_tag
def unit_price(setting: str, count: int = 1) -> str:
    """{% unit_price "COST_PER_LORA_INFERENCE" %} → "$0.03 · ₩42"."""
    return money.price_text(money.unit_price(setting, count))
