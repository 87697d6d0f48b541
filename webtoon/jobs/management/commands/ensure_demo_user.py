from django.conf import settings
from django.core.management.base import BaseCommand

from webtoon.accounts.services import ensure_demo_user


class Command(BaseCommand):
    help = "Make sure the demo account exists and print its login."

    def handle(self, *args, **options):
        _user, created = ensure_demo_user(settings.DEMO_USERNAME, settings.DEMO_PASSWORD)
        state = "created" if created else "exists"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo account ({state}): username '{settings.DEMO_USERNAME}', "
                f"password '{settings.DEMO_PASSWORD}' -> http://127.0.0.1:8000/accounts/login/"
            )
        )
