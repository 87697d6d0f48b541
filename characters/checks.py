"""The quality and identity check of every finished cut, and the photo's face descriptor.

Below the wizard's steps: generation asks for a check when a cut lands, curation and training
read the results, the worker runs them. Nothing here imports a step module.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task
from PIL import Image

from . import identity, likeness, quality
from .models import CreationSession, Cut, Photo

CHECK_CUT_TASK = "characters.tasks.check_cut"
STALE_CHECK_SECONDS = 120


def request_check(cut: Cut) -> None:
    cut_id = cut.pk
    transaction.on_commit(lambda: async_task(CHECK_CUT_TASK, cut_id))


def recheck_stale_cuts(*, session: CreationSession | None = None, now=None) -> int:
    """A quality check lost with its worker (a killed process, a broker without receipts) is
    asked for again, so no cut shows "품질 검사 중" forever. Run every minute, and for one
    session whenever its owner is watching it; each cut is asked for at most once per
    STALE_CHECK_SECONDS whichever path asks (a shared cache key)."""
    now = now or timezone.now()
    stale = Cut.objects.exclude(image="").filter(
        quality_ok__isnull=True, call__finished_at__lt=now - timedelta(seconds=STALE_CHECK_SECONDS)
    )
    if session is not None:
        stale = stale.filter(session=session)
    asked = 0
    for cut_id in stale.values_list("pk", flat=True):
        if cache.add(f"cut-recheck:{cut_id}", 1, STALE_CHECK_SECONDS):
            async_task(CHECK_CUT_TASK, cut_id)
            asked += 1
    return asked


def photo_embedding(photo: Photo) -> list[float] | None:
    """The uploaded photo's face descriptor, computed once and kept on the row."""
    if photo.face_embedding is None:
        with photo.image.open("rb") as fh, Image.open(fh) as im:
            embedding = identity.face_embedding(im.convert("RGB"))
        photo.face_embedding = embedding or []
        Photo.objects.filter(pk=photo.pk).update(face_embedding=photo.face_embedding)
    return photo.face_embedding or None


def anchor_of(character) -> list[float] | None:
    """The character's source photo's face descriptor (computed once, kept on the photo)."""
    photo = character.photo if character is not None else None
    return photo_embedding(photo) if photo is not None else None


def check_cut(cut_id: int) -> Cut | None:
    """Run the quality check on a finished cut; a failing cut is unchecked, with its reasons."""
    cut = Cut.objects.select_related("session__photo").filter(pk=cut_id).first()
    if cut is None or not cut.image:
        return cut
    session = cut.session
    others = (
        session.cuts.exclude(pk=cut.pk)
        .exclude(fingerprint="")
        .filter(number__lt=cut.number)
        .values_list("fingerprint", flat=True)
    )
    with cut.image.open("rb") as fh, Image.open(fh) as im:
        report = quality.assess_cut(
            im.convert("RGB"),
            style_id=session.style_id,
            reference_embedding=photo_embedding(session.photo),
            other_fingerprints=list(others),
            category=cut.category,
        )
    reference = photo_embedding(session.photo)
    fields = {
        "similarity": report.distance,
        "identity": likeness.compare(report.embedding, reference),
        "quality_ok": report.ok,
        "quality_reasons": report.reasons,
        "fingerprint": report.fingerprint,
    }
    if not report.ok:
        fields["selected"] = False
    # Only the image that was checked: a regenerated slot gets its own check.
    Cut.objects.filter(pk=cut.pk, image=cut.image.name).update(**fields)
    cut.refresh_from_db()
    return cut
