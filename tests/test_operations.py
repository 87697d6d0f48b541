"""What an upgrade runs (docs/OPERATIONS.md §10): migrations complete, schedules idempotent."""

import pytest
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db


def test_every_model_change_has_its_migration():
    # Exits non-zero (SystemExit) when a model differs from its migrations.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_init_schedules_twice_keeps_one_of_each_periodic_task():
    call_command("init_schedules", stdout=None)
    call_command("init_schedules", stdout=None)
    schedules = dict(Schedule.objects.values_list("func", "minutes"))
    assert Schedule.objects.count() == len(schedules) == 3
    assert schedules == {
        "webtoon.jobs.tasks.reconcile": 1,
        "characters.tasks.recheck_stale_cuts": 1,
        "characters.tasks.purge_deleted": 24 * 60,
    }
