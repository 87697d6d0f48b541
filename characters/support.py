"""What support staff read and repair on characters and sessions (the back office).

Repairs call the same domain functions as the app; this module only picks the right one."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from webtoon.exceptions import Conflict
from webtoon.jobs import services as jobs
from webtoon.jobs.models import Job, JobState

from . import training
from .enums import CharacterStatus, SessionState
from .models import Character, CreationSession, Cut

OPEN_JOB_STATES = (JobState.WAITING, JobState.QUEUED, JobState.RUNNING)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
ZIP_CACHE_SECONDS = 24 * 3600


# --- sessions -------------------------------------------------------------------------------
def with_open_jobs(sessions: QuerySet[CreationSession]) -> QuerySet[CreationSession]:
    """Annotate `has_open_job`: some cut of the session is being generated right now."""
    open_cut = Cut.objects.filter(session=OuterRef("pk"), call__job__state__in=OPEN_JOB_STATES)
    return sessions.annotate(has_open_job=Exists(open_cut))


def stuck_after(now: datetime | None = None) -> datetime:
    """A generating session untouched since before this moment is past the deadline."""
    return (now or timezone.now()) - timedelta(seconds=settings.GENERATION_TIMEOUT_SECONDS)


def stuck_q(now: datetime | None = None) -> Q:
    """Stuck: says "generating" but nothing generates, or it outlived the generation
    deadline (on a queryset from with_open_jobs)."""
    return Q(state=SessionState.GENERATING) & (
        Q(has_open_job=False) | Q(updated_at__lt=stuck_after(now))
    )


def is_stuck(session: CreationSession, now: datetime | None = None) -> bool:
    if session.state != SessionState.GENERATING:
        return False
    return not session.has_open_job or session.updated_at < stuck_after(now)


# --- characters -----------------------------------------------------------------------------
def character_jobs(character: Character) -> QuerySet[Job]:
    """Every job that made or used the character: its trainings (all versions), test
    images and gallery images, newest first."""
    ids = {character.training_job_id, character.samples_job_id}
    ids |= set(character.versions.values_list("training_job_id", flat=True))
    ids.discard(None)
    return Job.objects.filter(Q(pk__in=ids) | Q(subject__character=character.pk)).order_by(
        "-created_at"
    )


def training_zip(character: Character):
    version = character.current_version
    if version is not None and version.training_data:
        return version.training_data
    return character.training_data or None


def zip_cache_key(character: Character, data) -> str:
    # The storage name alone is unique in one storage; the character's creation time keeps
    # a cache shared by two storages (test runs, a restored database) from mixing them up.
    return f"{data.name}:{character.pk}:{character.created_at.timestamp()}"


def training_image_names(character: Character) -> list[str]:
    """The images inside the training ZIP (01.jpg, 02.jpg ...); [] when there is none.

    Cached by the ZIP's storage name: every package gets a fresh name and is never
    rewritten, and on S3 listing means fetching the whole ZIP."""
    data = training_zip(character)
    if data is None:
        return []
    key = f"backoffice:zip-names:{zip_cache_key(character, data)}"
    names = cache.get(key)
    if names is None:
        try:
            with data.open("rb") as fh, zipfile.ZipFile(fh) as zf:
                names = sorted(n for n in zf.namelist() if n.lower().endswith(IMAGE_SUFFIXES))
        except (OSError, zipfile.BadZipFile):
            return []
        cache.set(key, names, ZIP_CACHE_SECONDS)
    return names


def read_training_image(character: Character, name: str) -> bytes | None:
    if name not in training_image_names(character):
        return None
    with training_zip(character).open("rb") as fh, zipfile.ZipFile(fh) as zf:
        return zf.read(name)


def retry_job(job: Job) -> Job:
    """Support's retry of a failed job. A character's failed training goes through the
    training domain, so the character shows "training" again and the owner's training
    limit holds; any other job simply runs its failed calls again."""
    if job.kind == training.TRAINING.name:
        character = Character.objects.filter(
            pk=job.subject.get("character"), training_job=job
        ).first()
        if character is not None:
            if character.status == CharacterStatus.DELETED:
                raise Conflict(_("삭제된 캐릭터의 학습입니다. 먼저 삭제를 취소해주세요."))
            return training.retry_training(
                owner=job.owner, character_id=character.public_id, limited=False
            )
    return jobs.retry_job(job)
