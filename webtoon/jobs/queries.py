from django.db.models import Prefetch
from django.shortcuts import get_object_or_404

from .models import Job, RemoteCall


def jobs_for(user):
    """The user's jobs, newest first, with their calls (one extra query for all of them)."""
    return Job.objects.filter(owner=user).prefetch_related(
        Prefetch("calls", queryset=RemoteCall.objects.order_by("slot", "pk"))
    )


def job_for(user, public_id) -> Job:
    """One of the user's jobs; someone else's id is a 404."""
    return get_object_or_404(jobs_for(user), public_id=public_id)
