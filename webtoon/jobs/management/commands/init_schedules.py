from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    # (name, func, minutes)
    ("reconcile jobs", "webtoon.jobs.tasks.reconcile", 1),
    # Cut quality checks whose worker died are asked for again.
    ("recheck stale cut checks", "characters.tasks.recheck_stale_cuts", 1),
    # Deleted characters are kept SOFT_DELETE_DAYS for support to undo, then purged.
    ("purge deleted characters", "characters.tasks.purge_deleted", 24 * 60),
]


class Command(BaseCommand):
    help = "Create or update the periodic django-q2 schedules (idempotent)."

    def handle(self, *args, **options):
        for name, func, minutes in SCHEDULES:
            _obj, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{'created' if created else 'kept'} schedule: {name}")
