from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webtoon.imaging import get_backend
from webtoon.jobs import fal_check


def usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise CommandError(f"--max-usd: {text!r} is not an amount") from exc
    if not value.is_finite() or value < 0:
        raise CommandError(f"--max-usd: {text!r} is not an amount")
    return value


class Command(BaseCommand):
    help = (
        "Check fal with the real FAL_KEY before going live: upload, one 512x512 4-step "
        "fal-ai/flux-lora image (submit, status with logs, result), a cancelled queued "
        "request, the download through our allow-list, the webhook keys. Spends at most "
        "--max-usd (prices from FAL_PRICES); exits non-zero unless every check is OK."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-usd", type=usd, default=Decimal("0.10"))
        parser.add_argument("--timeout", type=float, default=300.0, help="seconds per image")
        parser.add_argument("--poll-interval", type=float, default=1.0)

    def handle(self, *args, max_usd: Decimal, timeout: float, poll_interval: float, **options):
        if not settings.FAL_KEY:
            raise CommandError("FAL_KEY is not set: this command checks the real fal account.")
        rows, spent = fal_check.run(
            get_backend("fal"), max_usd=max_usd, timeout=timeout, poll_interval=poll_interval
        )
        self.stdout.write(fal_check.table(rows))
        self.stdout.write(f"\nspent at most ${spent} of the ${max_usd} cap")
        bad = [r for r in rows if r.result in (fal_check.FAIL, fal_check.SKIP)]
        if bad:
            raise CommandError(
                f"{len(bad)} check(s) failed or not run: {', '.join(r.check for r in bad)}"
            )
        self.stdout.write(self.style.SUCCESS("fal works as the product expects"))
