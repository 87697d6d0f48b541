import json

from django import template

from webtoon.ui import money, sizes

register = template.Library()


@register.filter
def price(usd) -> str:
    """{{ cost|price }} → "$0.48 · ₩672"."""
    return money.price_text(usd or 0)


@register.filter
def json_attr(value) -> str:
    """{{ table|json_attr }} inside an attribute: JSON, escaped by the template."""
    return json.dumps(value, ensure_ascii=False)


@register.filter
def krw(usd) -> str:
    """{{ cost|krw }} → "₩2,800"."""
    return f"₩{money.won(usd or 0):,}"


@register.filter
def size_label(key) -> str:
    return sizes.size_label(key)


@register.simple_tag
def lora_price(image_size: str) -> str:
    """{% lora_price "portrait_4_3" %}: one LoRA image of that size, priced like the ledger."""
    return money.price_text(
        money.call_price("lora", {"image_size": image_size}, "COST_PER_LORA_INFERENCE")
    )
