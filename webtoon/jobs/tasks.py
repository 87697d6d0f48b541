"""django-q2 entry points: ids in, one domain call, nothing else."""

from . import services


def run_job(job_id: int) -> str:
    return services.run_job(job_id)


def reconcile() -> int:
    return services.reconcile()
