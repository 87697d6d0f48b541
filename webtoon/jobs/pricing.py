"""What a call to fal costs: per endpoint, per megapixel or per image or per run or per step,
from settings (FAL_PRICES), never from code. The cost notice (estimate from the arguments)
and the ledger (actual, from the result's real image sizes) use these same functions, so the
page, the job rows and the back office agree to the cent.

An endpoint with no listed price costs its job kind's flat setting (COST_PER_*).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from webtoon.imaging.sizes import requested_size

UNITS = ("mp", "image", "run", "step")
MEGAPIXEL = 1024 * 1024  # fal: square_hd (1024²) = 1 MP
CENT_FRACTION = Decimal("0.001")  # the ledger's precision (3 decimals)


@dataclass(frozen=True)
class Price:
    amount: Decimal
    unit: str  # mp | image | run | step


@lru_cache(maxsize=64)
def parse_price(text: str) -> Price:
    """"0.035/mp" -> Price(0.035, "mp"); a bare number is per image."""
    amount, _, unit = str(text).strip().partition("/")
    unit = (unit or "image").strip().lower()
    try:
        value = Decimal(amount.strip())
    except ArithmeticError as exc:
        raise ImproperlyConfigured(f"FAL_PRICES: bad amount in {text!r}") from exc
    if unit not in UNITS or value < 0:
        raise ImproperlyConfigured(f"FAL_PRICES: {text!r}, expected <amount>/{'|'.join(UNITS)}")
    return Price(value, unit)


def price_of(endpoint: str) -> Price | None:
    text = settings.FAL_PRICES.get(endpoint)
    return parse_price(text) if text else None


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


def _count(arguments: dict[str, Any]) -> int:
    try:
        return max(1, int(arguments.get("num_images") or 1))
    except (TypeError, ValueError):
        return 1


def _amount(price: Price, arguments: dict[str, Any], sizes: list[tuple[int, int]]) -> Decimal:
    if price.unit == "mp":
        pixels = sum(w * h for w, h in sizes)  # fal bills each image by its megapixels
        return price.amount * Decimal(pixels) / MEGAPIXEL
    if price.unit == "image":
        return price.amount * len(sizes)
    if price.unit == "step":
        return price.amount * int(arguments.get("steps") or 0)
    return price.amount


def estimate(endpoint: str, arguments: dict[str, Any], fallback: Decimal) -> Decimal:
    """The cost of one call before it runs, from what it asks for."""
    price = price_of(endpoint)
    if price is None:
        return _round(Decimal(fallback))
    size = requested_size(arguments or {})
    return _round(_amount(price, arguments or {}, [size] * _count(arguments or {})))


def actual(
    endpoint: str, arguments: dict[str, Any], result: dict[str, Any] | None, fallback: Decimal
) -> Decimal:
    """The cost of a finished call: per-MP prices follow the images fal really returned."""
    price = price_of(endpoint)
    if price is None or price.unit not in ("mp", "image"):
        return estimate(endpoint, arguments, fallback)
    sizes = _result_sizes(result)
    if not sizes:
        return estimate(endpoint, arguments, fallback)
    return _round(_amount(price, arguments or {}, sizes))


def _result_sizes(result: dict[str, Any] | None) -> list[tuple[int, int]]:
    sizes = []
    for image in (result or {}).get("images") or []:
        try:
            sizes.append((int(image["width"]), int(image["height"])))
        except (KeyError, TypeError, ValueError):
            return []
    return sizes

